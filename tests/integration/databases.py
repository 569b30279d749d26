"""Fresh, empty databases for tests that must start from nothing (no migrations applied)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storyframe.db.engine import create_engine


def server_url(postgres_url: str) -> str:
    """The URL of the maintenance database (`postgres`) on the server `postgres_url` points at."""
    return make_url(postgres_url).set(database="postgres").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_postgres_database(postgres_url: str) -> AsyncIterator[str]:
    """Create an empty database with a unique name on the session's server; drop it afterwards."""
    name = f"storyframe_fresh_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url(postgres_url))
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def fresh_sqlite_url(directory: Path) -> str:
    """The URL of a SQLite file that does not exist yet."""
    path = directory / f"fresh-{uuid.uuid4().hex[:12]}.db"
    assert not path.exists()
    return f"sqlite+aiosqlite:///{path}"
