"""Fixtures shared by every test: databases of both dialects, the app, its clients and seeds;
what they build, `tests.support` builds."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel
from starlette.applications import Starlette

from storyframe.db.engine import create_engine
from storyframe.db.migrate import upgrade
from storyframe.db.queue_schema import QUEUE_TABLES
from storyframe.domain.image_provider import ImageProvider
from storyframe.runtime import Runtime
from storyframe.services.accounts import Session as AccountSession
from storyframe.services.container import Services
from storyframe.settings import Settings
from tests.postgres import (
    PostgresServer,
    PostgresUnavailable,
    own_postgres_server,
    postgres_server,
)
from tests.support.apps import app_with, seeds_of, services_of, settings_for, sign_in_owner
from tests.support.clients import GraphQLClient, http_client
from tests.support.seeds import Seeds
from tests.support.sql import StatementCounter, counting

DIALECTS = ["sqlite", "postgresql"]
# Each pytest-xdist worker is a session of its own, with its own PostgreSQL server and databases.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def _run_on_own_loop(work: Coroutine[Any, Any, None]) -> None:
    """Session fixtures are requested from inside running event loops, so they set up on a loop
    of their own."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated database on the session's PostgreSQL server; tests empty it between them."""
    try:
        with postgres_server() as server_url:
            url = _database_url(server_url, f"storyframe_test_{WORKER}")
            _run_on_own_loop(_create_database(server_url, url))
            yield url
    except PostgresUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI: {error}")
        pytest.skip(str(error))


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, to stop and start again."""
    try:
        with own_postgres_server() as server:
            yield server
    except PostgresUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI: {error}")
        pytest.skip(str(error))


def _database_url(server_url: str, database: str) -> str:
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


async def _create_database(server_url: str, url: str) -> None:
    database = make_url(url).database
    admin = create_engine(server_url)
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        await admin.dispose()
    await _migrate(url)


# What TRUNCATE ... RESTART IDENTITY leaves, several times faster on a test's few rows (TRUNCATE
# makes new files for every table and index): children emptied before their parents, then every
# sequence back at its start; in one transaction.
EMPTY_POSTGRES = "; ".join(
    [f'DELETE FROM "{table.name}"' for table in reversed(SQLModel.metadata.sorted_tables)]
    + [f'DELETE FROM "{table}"' for table in sorted(QUEUE_TABLES)]
    + ["SELECT setval(seqrelid, seqstart, false) FROM pg_sequence"]
)


async def _empty_postgres(url: str) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(EMPTY_POSTGRES)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once for the session, for tests to copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "storyframe.db"
    _run_on_own_loop(_migrate(f"sqlite+aiosqlite:///{path}"))
    # Closing the last connection checkpointed the write-ahead log: the file alone is the database.
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty, migrated database of the test's dialect."""
    if dialect == "sqlite":
        path = tmp_path / "storyframe.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url = str(request.getfixturevalue("postgres_url"))
    await _empty_postgres(url)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path / "data")


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line configured as the test's app, its logging set-up undone afterwards."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    assert settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STORYFRAME_DATA_DIR", str(settings.data_dir))


@pytest.fixture
def provider() -> ImageProvider | None:
    """The image provider the app is built with; None builds the one the settings describe. A
    module overrides it to wrap or fake the provider."""
    return None


@pytest.fixture
async def app(settings: Settings, provider: ImageProvider | None) -> AsyncIterator[Starlette]:
    async with app_with(settings, provider=provider) as application:
        yield application


@pytest.fixture
def runtime(app: Starlette) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def owner(runtime: Runtime) -> AccountSession:
    """The account the `gql` client and the `services` fixture act for."""
    return await sign_in_owner(runtime)


@pytest.fixture
def services(runtime: Runtime, owner: AccountSession) -> Services:
    """The owner's services: what they create is what the `gql` client sees."""
    return services_of(runtime, owner)


@pytest.fixture
def seeds(runtime: Runtime, owner: AccountSession) -> Seeds:
    """Messages and images recorded for the owner, as generations and uploads record them."""
    return seeds_of(runtime, owner)


@pytest.fixture
def sql_counter(runtime: Runtime) -> StatementCounter:
    return counting(*runtime.engines)


@pytest.fixture
async def anonymous_http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with no token."""
    async with http_client(app) as client:
        yield client


@pytest.fixture
async def http(app: Starlette, owner: AccountSession) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that sends the owner's token."""
    async with http_client(app, owner.token) as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture
def anonymous_gql(anonymous_http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(anonymous_http)
