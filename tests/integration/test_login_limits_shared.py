"""Log-in rate limits across API processes: on PostgreSQL every process counts the same
attempts (two apps built apart, each with its own engine, stand for two processes behind a load
balancer); on SQLite the one process counts them in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from storyframe.db.engine import create_engine, session_factory
from storyframe.db.ratelimits import SqlRateLimit, key_digest
from storyframe.db.tables import LoginAttempt
from storyframe.runtime import LOGIN_WINDOW_SECONDS, Runtime
from storyframe.services.accounts import Session as AccountSession
from storyframe.services.ratelimit import SlidingWindow
from storyframe.settings import Settings
from tests.support import documents as doc
from tests.support.apps import OWNER_EMAIL, OWNER_PASSWORD, app_with
from tests.support.clients import GraphQLClient, client_of
from tests.support.clock import Clock

ON_POSTGRESQL = pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
ON_SQLITE = pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)

WRONG_PASSWORD = "not the right password"
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


async def _log_in(gql: GraphQLClient, email: str, password: str) -> list[str]:
    """The codes of the log-in's user errors: none when it gave a token."""
    data = await gql.data(doc.LOG_IN, {"input": {"email": email, "password": password}})
    payload: dict[str, Any] = data["logIn"]
    codes = [error["code"] for error in payload["userErrors"]]
    assert (payload["token"] is None) == bool(codes)
    return codes


async def _attempts(engine: AsyncEngine) -> list[tuple[str, str]]:
    """(bucket, key) of every attempt the table holds."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(col(LoginAttempt.bucket), col(LoginAttempt.key)).order_by(col(LoginAttempt.id))
        )
        return [(bucket, key) for bucket, key in rows]


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on the test's database, as two processes would have."""
    first, second = create_engine(database_url), create_engine(database_url)
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


# --- PostgreSQL: one count for every process --------------------------------------------------


@ON_POSTGRESQL
async def test_two_processes_share_the_limit_per_email(
    settings: Settings, owner: AccountSession
) -> None:
    # given: two failed log-ins through each of two apps, from two clients
    async with (
        app_with(settings, login_attempts_per_email=3) as first_app,
        app_with(settings, login_attempts_per_email=3) as second_app,
        client_of(first_app) as first,
        client_of(second_app, address="10.0.0.9") as second,
    ):
        assert first_app.state.runtime is not second_app.state.runtime
        refused = [await _log_in(first, OWNER_EMAIL, WRONG_PASSWORD) for _ in range(2)]
        refused.append(await _log_in(second, OWNER_EMAIL, WRONG_PASSWORD))

        # when
        fourth = await _log_in(second, OWNER_EMAIL, OWNER_PASSWORD)
        through_the_first = await _log_in(first, f" {OWNER_EMAIL.upper()}", OWNER_PASSWORD)
        other_email = await _log_in(second, "nobody@storyframe.test", WRONG_PASSWORD)

    # then
    assert refused == [["INVALID_CREDENTIALS"]] * 3
    assert fourth == ["RATE_LIMITED"]
    assert through_the_first == ["RATE_LIMITED"]
    assert other_email == ["INVALID_CREDENTIALS"]


@ON_POSTGRESQL
async def test_two_processes_share_the_limit_per_client(
    settings: Settings, owner: AccountSession
) -> None:
    # given: two log-ins through each app from the same client, each for another e-mail
    async with (
        app_with(settings, login_attempts_per_client=4) as first_app,
        app_with(settings, login_attempts_per_client=4) as second_app,
        client_of(first_app, address="10.0.0.7") as first,
        client_of(second_app, address="10.0.0.7") as second,
        client_of(second_app, address="10.0.0.9") as elsewhere,
    ):
        for number in range(2):
            assert await _log_in(first, f"a{number}@storyframe.test", WRONG_PASSWORD) == [
                "INVALID_CREDENTIALS"
            ]
            assert await _log_in(second, f"b{number}@storyframe.test", WRONG_PASSWORD) == [
                "INVALID_CREDENTIALS"
            ]

        # when
        fifth = await _log_in(first, OWNER_EMAIL, OWNER_PASSWORD)
        from_elsewhere = await _log_in(elsewhere, OWNER_EMAIL, OWNER_PASSWORD)

    # then
    assert fifth == ["RATE_LIMITED"]
    assert from_elsewhere == []


@ON_POSTGRESQL
async def test_the_window_slides(settings: Settings, owner: AccountSession) -> None:
    # given: the apps' clock; one failed log-in, another ten minutes later
    clock = Clock(START)
    window = timedelta(seconds=LOGIN_WINDOW_SECONDS)
    async with (
        app_with(settings, clock=clock, login_attempts_per_email=2) as first_app,
        app_with(settings, clock=clock, login_attempts_per_email=2) as second_app,
        client_of(first_app) as first,
        client_of(second_app) as second,
    ):
        assert await _log_in(first, OWNER_EMAIL, WRONG_PASSWORD) == ["INVALID_CREDENTIALS"]
        clock.set(START + timedelta(minutes=10))
        assert await _log_in(second, OWNER_EMAIL, WRONG_PASSWORD) == ["INVALID_CREDENTIALS"]

        # when
        clock.set(START + window - timedelta(seconds=1))
        before_the_first_leaves = await _log_in(first, OWNER_EMAIL, OWNER_PASSWORD)
        clock.set(START + window + timedelta(seconds=1))
        once_it_left = await _log_in(second, OWNER_EMAIL, OWNER_PASSWORD)
        again = await _log_in(first, OWNER_EMAIL, OWNER_PASSWORD)
        clock.set(START + timedelta(minutes=10) + window + timedelta(seconds=1))
        once_the_second_left = await _log_in(first, OWNER_EMAIL, OWNER_PASSWORD)

    # then
    assert before_the_first_leaves == ["RATE_LIMITED"]
    assert once_it_left == []
    assert again == ["RATE_LIMITED"]
    assert once_the_second_left == []


@ON_POSTGRESQL
async def test_concurrent_attempts_on_one_key_never_pass_the_limit(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # given: the same limit in two processes
    limits = [SqlRateLimit(session_factory(engine), "email", 5, 60) for engine in engines]

    # when: many attempts at once, half through each
    allowed = await asyncio.gather(
        *(limits[number % 2].allow("someone@storyframe.test") for number in range(30))
    )
    other_key = await limits[1].allow("someone.else@storyframe.test")

    # then
    assert sum(allowed) == 5
    assert other_key is True
    digest = key_digest("someone@storyframe.test")
    assert (await _attempts(engines[0])).count(("email", digest)) == 5


@ON_POSTGRESQL
async def test_a_refused_attempt_records_nothing_and_keys_are_kept_as_digests(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # given
    limit = SqlRateLimit(session_factory(engines[0]), "email", 2, 60)

    # when
    allowed = [await limit.allow(OWNER_EMAIL) for _ in range(4)]

    # then
    assert allowed == [True, True, False, False]
    assert await _attempts(engines[0]) == [("email", key_digest(OWNER_EMAIL))] * 2
    async with engines[0].connect() as connection:
        stored = await connection.execute(
            text("SELECT CAST(login_attempts AS text) FROM login_attempts")
        )
        assert all(OWNER_EMAIL not in row for row in stored.scalars())


@ON_POSTGRESQL
async def test_limits_of_other_buckets_count_apart(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # given: one key used up in one bucket
    sessions = session_factory(engines[0])
    email = SqlRateLimit(sessions, "email", 1, 60)
    client = SqlRateLimit(sessions, "client", 1, 60)
    assert await email.allow("10.0.0.7") is True

    # when
    same_bucket = await email.allow("10.0.0.7")
    other_bucket = await client.allow("10.0.0.7")

    # then
    assert (same_bucket, other_bucket) == (False, True)


@ON_POSTGRESQL
async def test_expired_attempts_of_idle_keys_are_forgotten(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # given: attempts of two keys, one of another bucket, then a window without them
    clock = Clock(START)
    sessions = session_factory(engines[0])
    limit = SqlRateLimit(sessions, "email", 3, 60, clock=clock)
    other_bucket = SqlRateLimit(sessions, "client", 3, 60, clock=clock)
    assert await limit.allow("idle@storyframe.test")
    assert await limit.allow("idle@storyframe.test")
    assert await other_bucket.allow("10.0.0.7")
    clock.set(START + timedelta(seconds=30))
    assert await limit.allow("recent@storyframe.test")

    # when: another key is tried once the first attempts have left the window
    clock.set(START + timedelta(seconds=61))
    assert await limit.allow("another@storyframe.test")

    # then: the idle key's attempts are gone; the recent one's and the other bucket's stay
    assert await _attempts(engines[0]) == [
        ("client", key_digest("10.0.0.7")),
        ("email", key_digest("recent@storyframe.test")),
        ("email", key_digest("another@storyframe.test")),
    ]


# --- SQLite: one process, counted in memory ---------------------------------------------------


@ON_SQLITE
async def test_on_sqlite_the_limit_is_kept_in_the_process(
    settings: Settings, owner: AccountSession
) -> None:
    # given
    async with (
        app_with(settings, login_attempts_per_email=2) as app,
        client_of(app) as gql,
    ):
        runtime: Runtime = app.state.runtime
        refused = [await _log_in(gql, OWNER_EMAIL, WRONG_PASSWORD) for _ in range(2)]

        # when
        limited = await _log_in(gql, OWNER_EMAIL, OWNER_PASSWORD)

        # then
        assert refused == [["INVALID_CREDENTIALS"]] * 2
        assert limited == ["RATE_LIMITED"]
        async with runtime.engine.connect() as connection:
            assert await connection.scalar(select(func.count()).select_from(LoginAttempt)) == 0


async def test_the_window_in_memory_slides() -> None:
    # given: one attempt, another ten seconds later
    now = [0.0]
    window = SlidingWindow(2, 60, clock=lambda: now[0])
    assert await window.allow("someone@storyframe.test")
    now[0] = 10.0
    assert await window.allow("someone@storyframe.test")

    # when
    now[0] = 59.0
    before_the_first_leaves = await window.allow("someone@storyframe.test")
    other_key = await window.allow("someone.else@storyframe.test")
    now[0] = 60.0
    once_it_left = await window.allow("someone@storyframe.test")
    again = await window.allow("someone@storyframe.test")

    # then
    assert (before_the_first_leaves, other_key, once_it_left, again) == (False, True, True, False)
