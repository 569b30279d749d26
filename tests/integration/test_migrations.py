"""Alembic migrations build exactly the schema the SQLModel tables describe, on both dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import storyframe.db.tables  # noqa: F401  (registers the tables on the metadata)
from storyframe.db.engine import create_engine
from storyframe.db.migrate import alembic_config, is_empty, upgrade
from storyframe.db.queue_schema import QUEUE_TABLES, ours
from tests.integration.databases import fresh_postgres_database, fresh_sqlite_url


@pytest.fixture
async def empty_database_url(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A database of the test's dialect with nothing in it: no tables, no Alembic version."""
    if dialect == "sqlite":
        yield fresh_sqlite_url(tmp_path)
        return
    async with fresh_postgres_database(str(request.getfixturevalue("postgres_url"))) as url:
        yield url


@pytest.fixture
async def engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(empty_database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": ours}
    )
    return list(compare_metadata(context, SQLModel.metadata))


async def differences(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(_differences)


def _check_constraints(connection: Connection) -> set[tuple[str, str | None]]:
    inspector = inspect(connection)
    return {
        (table, check["name"])
        for table in inspector.get_table_names()
        for check in inspector.get_check_constraints(table)
    }


async def check_constraints(engine: AsyncEngine) -> set[tuple[str, str | None]]:
    """(table, name) of every CHECK constraint; autogenerate does not compare these."""
    async with engine.connect() as connection:
        return await connection.run_sync(_check_constraints)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_tables)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


MODEL_TABLES = {table.name for table in SQLModel.metadata.sorted_tables}
MODEL_CHECKS = {
    (table.name, str(constraint.name))
    for table in SQLModel.metadata.sorted_tables
    for constraint in table.constraints
    if isinstance(constraint, CheckConstraint)
}


async def test_the_database_starts_empty(engine: AsyncEngine) -> None:
    assert await is_empty(engine)
    assert await current_revision(engine) is None
    # The comparison is not vacuous: against nothing, every model table is reported missing.
    added = {diff[1].name for diff in await differences(engine) if diff[0] == "add_table"}
    assert added == MODEL_TABLES


async def test_upgrade_to_head_matches_the_models(engine: AsyncEngine, dialect: str) -> None:
    await upgrade(engine)

    assert await current_revision(engine) == head_revision()
    # PostgreSQL also holds the task queue's tables, for `storyframe worker`.
    queue = QUEUE_TABLES if dialect == "postgresql" else frozenset()
    assert await tables(engine) == MODEL_TABLES | queue | {"alembic_version"}
    assert await differences(engine) == []
    assert await check_constraints(engine) == MODEL_CHECKS


async def test_downgrade_to_base_then_upgrade_again(engine: AsyncEngine) -> None:
    await upgrade(engine)
    await downgrade(engine, "base")

    assert await current_revision(engine) is None
    assert await tables(engine) <= {"alembic_version"}

    await upgrade(engine)

    assert await current_revision(engine) == head_revision()
    assert await differences(engine) == []


async def test_upgrading_twice_changes_nothing(engine: AsyncEngine) -> None:
    await upgrade(engine)
    await upgrade(engine)

    assert await current_revision(engine) == head_revision()
    assert await differences(engine) == []
