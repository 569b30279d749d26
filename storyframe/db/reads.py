"""Reads outside any transaction, as plain rows, on one connection per request.

A read of one statement needs no transaction: the read engine runs in autocommit, so a read is
its statement and its fetch, with no `BEGIN` before it and no `ROLLBACK` after. Within
`Reads.held()` (an HTTP request), every read goes through one connection, checked out at the
first read and returned when the block ends: the token lookup and the request's reads share it,
and a request that reads nothing never checks one out. Reads of a request that run at once (its
DataLoaders' batches) take turns on it. While the request does something else that may take long
(receiving an upload's body, a mutation's own work) it gives the connection back
(`Reads.release`), so a pool of a few connections serves any number of such requests. Outside
such a block, each read checks a connection out for itself.

On PostgreSQL the reads run on asyncpg. On SQLite they run on the event loop itself, through
the standard library's driver: aiosqlite hands every step of a statement (cursor, execute,
fetch, close) to a thread of its own and back, and those hand-offs cost more than the reads of a
small request (`bench/README.md`). A read in WAL mode never waits for a writer, and the API's
reads are bounded (pages of at most 100, the query cost limit), so a read holds the loop no
longer than the CPU it needs; its connection answers only reads (`query_only`) and gives up
after `SQLITE_READ_BUSY_MS` should SQLite's lock ever be held (a journal being recovered).

Rows are `sqlalchemy.Row`s: each column of the statement as an attribute, nothing more. They are
not ORM entities: nothing tracks them, and they cannot be written back.

No ping precedes a checkout (a round trip a request): a read whose connection the server has
dropped (it restarted) runs once more on a new connection, as reads change nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.util import greenlet_spawn

log = logging.getLogger("storyframe.database")

Parameters = Mapping[str, Any] | None


async def _connect(engine: AsyncEngine | Engine) -> AsyncConnection | Connection:
    return await engine.connect() if isinstance(engine, AsyncEngine) else engine.connect()


async def _execute(
    connection: AsyncConnection | Connection, statement: Executable, parameters: Parameters
) -> Sequence[Row[Any]]:
    if isinstance(connection, AsyncConnection):
        return (await connection.execute(statement, parameters)).all()
    return connection.execute(statement, parameters).all()


async def _connect_and_execute(
    engine: AsyncEngine | Engine, statement: Executable, parameters: Parameters
) -> tuple[AsyncConnection | Connection, Sequence[Row[Any]]]:
    """A connection, and the rows of its first statement: on asyncpg in one hand-off to
    SQLAlchemy's greenlet rather than two (the first read of a request is often its only one)."""
    if not isinstance(engine, AsyncEngine):
        connection = engine.connect()
        try:
            return connection, connection.execute(statement, parameters).all()
        except BaseException:
            await _close(connection)
            raise
    sync_engine = engine.sync_engine

    def run() -> tuple[Connection, Sequence[Row[Any]]]:
        sync = sync_engine.connect()
        try:
            return sync, sync.execute(statement, parameters).all()
        except BaseException:
            sync.close()
            raise

    sync, rows = await greenlet_spawn(run)
    return AsyncConnection(engine, sync), rows


def _dropped(error: DBAPIError) -> bool:
    """The server dropped the connection (SQLAlchemy has invalidated it, and its pool)."""
    return bool(error.connection_invalidated)


async def _close(connection: AsyncConnection | Connection) -> None:
    try:
        if isinstance(connection, AsyncConnection):
            await connection.close()
        else:
            connection.close()
    except Exception:  # a statement broken off (a cancelled request) leaves it unusable
        log.debug("a read connection did not close cleanly", exc_info=True)
        if isinstance(connection, AsyncConnection):
            await connection.invalidate()
        else:
            connection.invalidate()


class _Held:
    """The connection of one block of reads: opened at its first read, closed with the block."""

    def __init__(self, engine: AsyncEngine | Engine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | Connection | None = None
        self._turn = asyncio.Lock()
        self.closed = False

    async def rows(
        self, statement: Executable, parameters: Parameters
    ) -> Sequence[Row[Any]] | None:
        """The statement's rows; None once the block has ended (a task that outlived it)."""
        async with self._turn:
            if self.closed:
                return None
            try:
                if self._connection is None:
                    self._connection, rows = await _connect_and_execute(
                        self._engine, statement, parameters
                    )
                    return rows
                return await _execute(self._connection, statement, parameters)
            except DBAPIError as error:
                if not _dropped(error):
                    raise
            # A read changes nothing: once more, on a new connection.
            dropped, self._connection = self._connection, None
            if dropped is not None:
                await _close(dropped)
            self._connection, rows = await _connect_and_execute(self._engine, statement, parameters)
            return rows

    async def release(self) -> None:
        """Give the connection back to the pool; the block's next read checks one out again."""
        async with self._turn:
            connection, self._connection = self._connection, None
        if connection is not None:
            await _close(connection)

    async def aclose(self) -> None:
        self.closed = True
        await self.release()


_held: ContextVar[_Held | None] = ContextVar("storyframe_held_reads", default=None)


class Reads:
    """The read side of the database: statements run in autocommit, answered as plain rows."""

    def __init__(self, engine: AsyncEngine | Engine) -> None:
        self.engine = engine
        """The engine reads run on: autocommit, and no rollback when a connection goes back;
        a blocking one (SQLite's) runs them on the event loop."""

    @property
    def sync_engine(self) -> Engine:
        """The engine's events: statements executed, connections checked out."""
        return self.engine.sync_engine if isinstance(self.engine, AsyncEngine) else self.engine

    async def rows(
        self, statement: Executable, parameters: Parameters = None
    ) -> Sequence[Row[Any]]:
        """The rows of `statement`, with `parameters` for its bound parameters."""
        held = _held.get()
        if held is not None and (rows := await held.rows(statement, parameters)) is not None:
            return rows
        # Outside a block, or in a task that outlived its request's block.
        for attempt in (1, 2):
            connection = await _connect(self.engine)
            try:
                return await _execute(connection, statement, parameters)
            except DBAPIError as error:
                if attempt == 2 or not _dropped(error):
                    raise
            finally:
                await _close(connection)
        raise AssertionError("unreachable")  # pragma: no cover

    async def first(self, statement: Executable, parameters: Parameters = None) -> Row[Any] | None:
        found = await self.rows(statement, parameters)
        return found[0] if found else None

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Every read in the block (and in the tasks it starts) goes through one connection."""
        held = _Held(self.engine)
        token = _held.set(held)
        try:
            yield
        finally:
            _held.reset(token)
            await held.aclose()

    async def release(self) -> None:
        """Give the current block's connection back while the block does something else for a
        while (receives an upload, writes, waits for a provider); its next read takes one
        again. Outside a block, nothing to do."""
        held = _held.get()
        if held is not None:
            await held.release()

    async def dispose(self) -> None:
        if isinstance(self.engine, AsyncEngine):
            await self.engine.dispose()
        else:
            self.engine.dispose()
