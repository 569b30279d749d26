"""Which failures mean the database is unreachable, and how an outage is logged."""

from __future__ import annotations

import logging
import sqlite3

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from storyframe.db.outage import DatabaseUnreachable, Outage, is_unreachable


def _raised_from(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def _dbapi(error: BaseException, *, invalidated: bool) -> DBAPIError:
    return DBAPIError("SELECT 1", None, error, connection_invalidated=invalidated)


UNREACHABLE = [
    pytest.param(
        DatabaseUnreachable("ConnectionRefusedError: [Errno 111] Connect call failed"),
        id="connecting-failed",
    ),
    pytest.param(
        _dbapi(Exception("connection was closed in the middle of operation"), invalidated=True),
        id="connection-broke-under-a-statement",
    ),
    pytest.param(
        _raised_from(RuntimeError("wrapped"), asyncpg.CannotConnectNowError("starting up")),
        id="server-starting-up",
    ),
    pytest.param(asyncpg.ConnectionDoesNotExistError("closed"), id="connection-gone"),
    pytest.param(asyncpg.AdminShutdownError("terminating connection"), id="server-shutting-down"),
    pytest.param(asyncpg.TooManyConnectionsError("too many clients"), id="server-full"),
]
NOT_UNREACHABLE = [
    pytest.param(
        OperationalError("BEGIN", None, sqlite3.OperationalError("database is locked")),
        id="sqlite-locked",
    ),
    pytest.param(IntegrityError("INSERT", None, Exception("duplicate key")), id="constraint"),
    pytest.param(_dbapi(Exception("syntax error"), invalidated=False), id="bad-statement"),
    pytest.param(asyncpg.InvalidPasswordError("password authentication failed"), id="password"),
    pytest.param(ConnectionRefusedError(111, "refused"), id="a-socket-not-the-database's"),
    pytest.param(OSError(28, "No space left on device"), id="a-full-disk"),
    pytest.param(ValueError("a bug"), id="a-bug"),
]


@pytest.mark.parametrize("error", UNREACHABLE)
def test_these_failures_mean_the_database_is_unreachable(error: BaseException) -> None:
    assert is_unreachable(error)


@pytest.mark.parametrize("error", NOT_UNREACHABLE)
def test_these_failures_are_not_an_outage(error: BaseException) -> None:
    assert not is_unreachable(error)


def test_an_outage_is_logged_when_it_starts_and_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given
    outage = Outage(clock=iter([10.0, 12.5]).__next__)
    refusal = _raised_from(
        DatabaseUnreachable("connecting failed"), ConnectionRefusedError(111, "Connection refused")
    )

    # when
    with caplog.at_level(logging.INFO, logger="storyframe.database"):
        outage.answered()  # nothing to end yet
        for _ in range(3):
            outage.refused(refusal)
        during = outage.ongoing
        outage.answered()
        outage.answered()

    # then
    assert during
    assert not outage.ongoing
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "the database is unreachable; requests that need it get 503 until it answers"),
        ("INFO", "the database answers again"),
    ]
    warning, info = caplog.records
    assert warning.reason == "ConnectionRefusedError: [Errno 111] Connection refused"  # type: ignore[attr-defined]
    assert (info.outage_seconds, info.refused_requests) == (2.5, 3)  # type: ignore[attr-defined]
    assert not any(r.exc_info for r in caplog.records)
