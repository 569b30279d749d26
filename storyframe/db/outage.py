"""Telling a database that cannot be reached from a statement that failed, and keeping track
of an outage so that it is logged once when it starts and once when it ends.

Unreachable: connecting failed (refused, timed out, no route, the server starting up or
shutting down), or the connection broke under a statement (SQLAlchemy then invalidates it).
Anything else — a constraint, a bad statement, a bug — is not an outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("storyframe.database")

# SQLSTATEs of a server that is away or going: connection exceptions (class 08), shutting
# down (57P01, 57P02), starting up (57P03), and no connection slot free (53300).
_AWAY_CLASS = "08"
_AWAY_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


class DatabaseUnreachable(Exception):
    """Connecting to the database failed; the cause is the driver's or the OS's error."""


def is_unreachable(error: BaseException) -> bool:
    """Whether `error`, or what it was raised from, says the database could not be reached."""
    seen: BaseException | None = error
    for _ in range(8):  # the driver's and SQLAlchemy's wrappers are a few levels deep at most
        if seen is None:
            return False
        if isinstance(seen, DatabaseUnreachable):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if _server_away(seen):
            return True
        seen = seen.__cause__
    return False


def _server_away(error: BaseException) -> bool:
    """The driver's error (asyncpg's and psycopg's carry a `sqlstate`) says so."""
    state = getattr(error, "sqlstate", None)
    return isinstance(state, str) and (state.startswith(_AWAY_CLASS) or state in _AWAY_STATES)


def reason(error: BaseException) -> str:
    """The innermost cause of an outage, in one line: what the log says went wrong."""
    for _ in range(8):
        if error.__cause__ is None:
            break
        error = error.__cause__
    return f"{type(error).__name__}: {error}".strip().splitlines()[0]


class Outage:
    """Whether the database is away, as requests last found it: the first request refused
    logs a warning, the first connection handed out again an info line; nothing in between."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None
        self._refused = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def refused(self, error: BaseException) -> None:
        """A request could not be answered because the database is unreachable."""
        self._refused += 1
        if self._since is None:
            self._since = self._clock()
            log.warning(
                "the database is unreachable; requests that need it get 503 until it answers",
                extra={"reason": reason(error)},
            )

    def answered(self) -> None:
        """The database answered (a connection was handed out)."""
        if self._since is None:
            return
        seconds, refused = self._clock() - self._since, self._refused
        self._since, self._refused = None, 0
        log.info(
            "the database answers again",
            extra={"outage_seconds": round(seconds, 1), "refused_requests": refused},
        )


def watch(engine: AsyncEngine | Engine, outage: Outage) -> None:
    """Make the engine's failures to connect `DatabaseUnreachable`, and tell `outage` the
    database answered whenever a connection is handed out (after the pool's ping)."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as error:
            # The OS's socket errors (refused, reset, no route, name not resolved, timed out)
            # or the server's refusal while it starts, stops or is full. Not a wrong password.
            if isinstance(error, OSError) or _server_away(error):
                raise DatabaseUnreachable(reason(error)) from error
            raise

    @event.listens_for(sync_engine, "checkout")
    def _checked_out(*_: Any) -> None:
        outage.answered()
