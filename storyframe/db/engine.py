"""Engines and sessions for SQLite (embedded default) and PostgreSQL (asyncpg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# A write transaction on SQLite starts with BEGIN IMMEDIATE, so concurrent writers queue on the
# database lock instead of failing halfway through with "database is locked".
WRITE_OPTION = "storyframe_write"


def normalize_url(url: str) -> URL:
    """Add the async driver to a plain `postgresql://` or `sqlite://` URL."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername not in {"postgresql+asyncpg", "sqlite+aiosqlite"}:
        raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")
    return parsed


def sqlite_url_for(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'storyframe.db').resolve()}"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo=echo)
    return create_async_engine(parsed, echo=echo, pool_pre_ping=True, pool_size=10)


SQLITE_READ_BUSY_MS = 1000
"""How long a SQLite read waits for SQLite's lock, which in WAL mode only a process recovering
the journal holds, before it fails."""


def create_read_engine(engine: AsyncEngine) -> AsyncEngine | Engine:
    """The engine reads run on (`storyframe.db.reads`): autocommit, so a read of one statement
    runs no `BEGIN` before it, and no `ROLLBACK` when its connection goes back to the pool.
    PostgreSQL's has a pool of its own. SQLite's is a blocking engine (the standard library's
    driver) with connections of its own to the same file, which answer reads only."""
    if engine.dialect.name != "sqlite":
        # A pool of its own, in autocommit from the start, and no ping before a checkout (a
        # round trip for every request): a read that finds its connection dropped by the server
        # (a restart) runs once more on a new one (`storyframe.db.reads`), and the pool then
        # replaces the rest of its connections.
        return create_async_engine(
            engine.url,
            echo=engine.echo,
            pool_pre_ping=False,
            pool_size=10,
            isolation_level="AUTOCOMMIT",
            skip_autocommit_rollback=True,
        )
    if engine.url.database in (None, "", ":memory:"):
        return engine  # a database in memory is one connection's own
    reads = create_sync_engine(
        engine.url.set(drivername="sqlite+pysqlite"),
        echo=engine.echo,
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,
        # Used on the event loop's thread only, though not always the same loop's (tests).
        connect_args={"check_same_thread": False, "timeout": SQLITE_READ_BUSY_MS / 1000},
        # Checked out on the event loop, so it must never wait for a connection to come back:
        # it opens another (a file handle) when all five are out.
        max_overflow=-1,
    )

    @event.listens_for(reads, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_READ_BUSY_MS}")
        cursor.close()

    return reads


def _sqlite_engine(url: URL, *, echo: bool) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin) instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
