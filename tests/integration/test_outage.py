"""The database goes away and comes back: requests get 503 with a code and `Retry-After`, the
log says so once, and the server answers again by itself once the database is back.

The test runs a PostgreSQL server of its own, so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from storyframe.db.engine import create_engine
from storyframe.db.migrate import upgrade
from storyframe.view import RETRY_AFTER_SECONDS
from tests.postgres import PostgresServer
from tests.support.apps import app_with, settings_for
from tests.support.clients import http_client
from tests.support.documents import CREATE_PROJECT, LOG_IN, SIGN_UP
from tests.support.sql import until_waiting_for_locks

EMAIL = "outage@storyframe.test"
PASSWORD = "a long and quiet river"
PROJECTS = "query { projects { totalCount } viewer { email } }"
PROJECT_COUNT = "query { projects { totalCount } }"
TERMINATE_WAITING = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
)
CREDENTIALS = {"input": {"email": EMAIL, "password": PASSWORD}}
HARBOUR = {"name": "Harbour"}


@pytest.fixture
async def app(own_postgres: PostgresServer, tmp_path: Path) -> AsyncIterator[Starlette]:
    engine = create_engine(own_postgres.url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    async with app_with(settings_for(own_postgres.url, tmp_path / "data")) as application:
        yield application


async def _post(
    app: Starlette, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> httpx.Response:
    async with http_client(app, token) as http:
        return await http.post("/graphql", json={"query": query, "variables": variables})


def _assert_unavailable(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    body: dict[str, Any] = response.json()
    assert [error["extensions"]["code"] for error in body["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert "errorId" not in body["errors"][0]["extensions"]
    return body


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "storyframe.database"
    ]


async def test_requests_get_503_while_the_database_is_down_and_succeed_once_it_is_back(
    app: Starlette, own_postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    # given: an account with a project, and a server that then stops
    signed_up = (await _post(app, SIGN_UP, CREDENTIALS)).json()["data"]["signUp"]
    token = signed_up["token"]
    assert (await _post(app, CREATE_PROJECT, HARBOUR, token=token)).status_code == 200
    caplog.set_level(logging.INFO)
    own_postgres.stop()

    # when: requests with a token (read before anything runs) and without (whose fields then
    # need the database), each more than once
    with_token = [await _post(app, PROJECTS, token=token) for _ in range(3)]
    mutation_with_token = await _post(app, CREATE_PROJECT, HARBOUR, token=token)
    without_token = [await _post(app, LOG_IN, CREDENTIALS) for _ in range(2)]

    # then: 503 JSON with a code and Retry-After; one warning, no stack trace
    for response in [*with_token, mutation_with_token]:
        assert "data" not in _assert_unavailable(response)
    for response in without_token:
        body = _assert_unavailable(response)
        assert body["data"] is None
        assert body["errors"][0]["path"] == ["logIn"]
    assert _outage_lines(caplog) == [
        (
            "WARNING",
            "the database is unreachable; requests that need it get 503 until it answers",
        )
    ]
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []

    # when: the database is back
    own_postgres.start()
    answered = await _post(app, PROJECTS, token=token)
    logged_in = await _post(app, LOG_IN, CREDENTIALS)
    again = await _post(app, PROJECTS, token=token)

    # then: answered as usual, and the end of the outage is logged once
    assert answered.status_code == 200
    assert answered.json() == {"data": {"projects": {"totalCount": 1}, "viewer": {"email": EMAIL}}}
    assert logged_in.json()["data"]["logIn"]["userErrors"] == []
    assert again.json() == answered.json()
    assert [level for level, _ in _outage_lines(caplog)] == ["WARNING", "INFO"]
    assert _outage_lines(caplog)[1][1] == "the database answers again"
    outage = [r for r in caplog.records if r.name == "storyframe.database"]
    assert outage[0].reason.startswith("ConnectionRefusedError")  # type: ignore[attr-defined]
    assert outage[1].refused_requests == 6  # type: ignore[attr-defined]
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


async def test_a_read_whose_connection_is_lost_under_it_runs_again_on_a_new_one(
    app: Starlette, own_postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a request whose read waits for a lock this test holds
    token = (await _post(app, SIGN_UP, CREDENTIALS)).json()["data"]["signUp"]["token"]
    assert (await _post(app, CREATE_PROJECT, HARBOUR, token=token)).status_code == 200
    caplog.set_level(logging.INFO)
    locker = create_engine(own_postgres.url)
    try:
        async with locker.connect() as connection:
            await connection.execute(text("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE"))
            request = asyncio.create_task(_post(app, PROJECT_COUNT, token=token))
            await until_waiting_for_locks(locker, 1)

            # when: the server ends that request's connection under it, then the lock goes
            await connection.execute(TERMINATE_WAITING)
            await until_waiting_for_locks(locker, 1)  # the read, again, on a new connection
            await connection.rollback()
            answered = await request
    finally:
        await locker.dispose()

    # then: a read changes nothing, so it ran again: answered, and no outage
    assert answered.json() == {"data": {"projects": {"totalCount": 1}}}
    assert _outage_lines(caplog) == []
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


async def test_a_write_whose_connection_is_lost_under_it_is_an_outage_until_the_next_connection(
    app: Starlette, own_postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a mutation whose write waits for a lock this test holds
    token = (await _post(app, SIGN_UP, CREDENTIALS)).json()["data"]["signUp"]["token"]
    caplog.set_level(logging.INFO)
    locker = create_engine(own_postgres.url)
    try:
        async with locker.connect() as connection:
            await connection.execute(text("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE"))
            request = asyncio.create_task(_post(app, CREATE_PROJECT, HARBOUR, token=token))
            await until_waiting_for_locks(locker, 1)

            # when: the server ends that request's connection under it
            await connection.execute(TERMINATE_WAITING)
            lost = await request
            await connection.rollback()
    finally:
        await locker.dispose()
    after = await _post(app, PROJECT_COUNT, token=token)

    # then: 503 for the request that lost it (a write is not run twice), and the next one is
    # answered on a new connection
    assert _assert_unavailable(lost)["errors"][0]["path"] == ["createProject"]
    assert after.json() == {"data": {"projects": {"totalCount": 0}}}
    assert [level for level, _ in _outage_lines(caplog)] == ["WARNING", "INFO"]
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
