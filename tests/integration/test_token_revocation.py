"""A token revoked through one API process is refused by another on the very next request:
two `storyframe serve` processes on one database, each checking the token on every request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.documents import CHANGE_PASSWORD, LOG_IN, LOG_OUT
from tests.support.servers import graphql, running_server, sign_up_over_http

EMAIL = "two-processes@storyframe.test"
PASSWORD = "served over plain http"
VIEWER = "{ viewer { id } }"
PROJECTS = "{ projects(first: 1) { nodes { id } } }"


@contextmanager
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two `storyframe serve` processes on the database, each with a client of its own."""
    with (
        running_server(tmp_path / "a", tmp_path / "a.log", DATABASE_URL=database_url) as (_, a),
        running_server(tmp_path / "b", tmp_path / "b.log", DATABASE_URL=database_url) as (_, b),
    ):
        yield a, b


def _as(client: httpx.Client, token: str) -> None:
    client.headers["Authorization"] = f"Bearer {token}"


def _refused(client: httpx.Client) -> list[str | None]:
    """What the process answers a query that needs a viewer: the errors' codes."""
    response = client.post("/graphql", json={"query": PROJECTS})
    body: dict[str, Any] = response.json()
    return [error["extensions"].get("code") for error in body.get("errors", [])]


async def test_logging_out_on_one_process_is_refused_by_the_other_at_once(
    database_url: str, tmp_path: Path
) -> None:
    with two_servers(database_url, tmp_path) as (a, b):
        # given: a token both processes accept
        token = sign_up_over_http(a, EMAIL)
        _as(b, token)
        assert graphql(b, VIEWER, {})["viewer"] is not None
        assert _refused(b) == []

        # when
        assert graphql(a, LOG_OUT, {})["logOut"]["revoked"] is True

        # then: the other process's very next requests refuse it
        assert graphql(b, VIEWER, {})["viewer"] is None
        assert _refused(b) == ["UNAUTHENTICATED"]


async def test_changing_the_password_on_one_process_logs_out_other_tokens_on_the_other(
    database_url: str, tmp_path: Path
) -> None:
    with two_servers(database_url, tmp_path) as (a, b):
        # given: one session on each process
        kept = sign_up_over_http(a, EMAIL)
        logged_in = graphql(b, LOG_IN, {"input": {"email": EMAIL, "password": PASSWORD}})
        other = logged_in["logIn"]["token"]
        _as(b, other)
        assert _refused(b) == []

        # when
        changed = graphql(
            a,
            CHANGE_PASSWORD,
            {"input": {"currentPassword": PASSWORD, "newPassword": "a longer phrase to remember"}},
        )

        # then: the other session is refused at once; the one that changed it is kept
        assert changed["changePassword"]["userErrors"] == []
        assert _refused(b) == ["UNAUTHENTICATED"]
        _as(b, kept)
        assert _refused(b) == []
