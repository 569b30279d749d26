"""Fixtures shared by every test: databases of both dialects, the app, a GraphQL client."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from starlette.applications import Starlette

from storyframe.app import create_app
from storyframe.db.engine import create_engine
from storyframe.db.migrate import upgrade
from storyframe.domain.image_provider import ImageProvider
from storyframe.runtime import Runtime
from storyframe.services.accounts import Session as AccountSession
from storyframe.services.container import Services
from storyframe.settings import Settings
from tests.postgres import PostgresUnavailable, postgres_server

DIALECTS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    try:
        with postgres_server() as url:
            # Requested from inside running event loops, so set up on a loop of its own.
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, _create_database(url)).result()
            yield url.rsplit("/", 1)[0] + "/storyframe_test"
    except PostgresUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI: {error}")
        pytest.skip(str(error))


async def _create_database(server_url: str) -> None:
    """A migrated database for the session; tests empty it between them."""
    admin = create_engine(server_url)
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("DROP DATABASE IF EXISTS storyframe_test"))
            await connection.execute(text("CREATE DATABASE storyframe_test"))
    finally:
        await admin.dispose()
    engine = create_engine(server_url.rsplit("/", 1)[0] + "/storyframe_test")
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _empty_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(dialect: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty, migrated database of the test's dialect."""
    if dialect == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'storyframe.db'}"
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        return url
    url = str(request.getfixturevalue("postgres_url"))
    await _empty_postgres(url)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Cheap password hashing: the tests sign many people up; production keeps the defaults.
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        # Placeholder images, whatever the environment says; OpenAI tests use a fake server.
        openai_api_key=None,
        # The snapshot that proves a refusal changed nothing reads every object at once, at
        # the largest pages; the tests of the cost limit set it themselves.
        max_query_cost=10**12,
    )


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line configured as the test's app, its logging set-up undone afterwards."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    assert settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STORYFRAME_DATA_DIR", str(settings.data_dir))


@dataclass
class StatementCounter:
    """Counts the SQL statements an engine executes while `counting` is on."""

    counting: bool = False
    statements: list[str] = field(default_factory=list)

    def attach(self, engine: AsyncEngine) -> None:
        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _count(*args: Any) -> None:
            statement = args[2]
            if self.counting and not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
                self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        self.statements.clear()
        self.counting = True
        return self

    def __exit__(self, *_: object) -> None:
        self.counting = False


@pytest.fixture
def provider() -> ImageProvider | None:
    """The image provider the app is built with; None builds the one the settings describe. A
    module overrides it to wrap or fake the provider."""
    return None


@pytest.fixture
async def app(settings: Settings, provider: ImageProvider | None) -> AsyncIterator[Starlette]:
    application = create_app(settings, provider=provider)
    try:
        yield application
    finally:
        await application.state.runtime.aclose()


@pytest.fixture
def runtime(app: Starlette) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


OWNER_EMAIL = "owner@storyframe.test"
OWNER_PASSWORD = "a long and quiet river"


@pytest.fixture
async def owner(runtime: Runtime) -> AccountSession:
    """The account the `gql` client and the `services` fixture act for."""
    return await runtime.accounts.sign_up(OWNER_EMAIL, OWNER_PASSWORD, "tests")


@pytest.fixture
def services(runtime: Runtime, owner: AccountSession) -> Services:
    """The owner's services: what they create is what the `gql` client sees."""
    assert owner.user.id is not None
    return runtime.services_for(owner.user.id)


@pytest.fixture
def sql_counter(runtime: Runtime) -> StatementCounter:
    counter = StatementCounter()
    counter.attach(runtime.engine)
    return counter


class GraphQLClient:
    """Posts GraphQL documents to the app over HTTP and unwraps the answers."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole response body: `data` and, when something failed, `errors`."""
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """`data` of a response that must have no errors."""
        body = await self.execute(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The payload of a single-mutation document that must succeed without user errors."""
        data = await self.data(query, variables)
        (payload,) = data.values()
        assert payload["userErrors"] == [], payload["userErrors"]
        result: dict[str, Any] = payload
        return result


@pytest.fixture
async def anonymous_http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with no token."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://storyframe.test") as client:
        yield client


@pytest.fixture
async def http(app: Starlette, owner: AccountSession) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that sends the owner's token."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {owner.token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://storyframe.test", headers=headers
    ) as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture
def anonymous_gql(anonymous_http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(anonymous_http)
