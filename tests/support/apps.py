"""One way to build the app under test: its settings, the app and its teardown, and the owner.

`settings_for` gives the settings every test app starts from; `settings_with` changes some of
them. `app_with` builds the app (with a fake provider, storage or clock in place of what the
settings would build, where given) and closes it afterwards: running generations drained, the
provider's client and the database closed. `owned_app` adds the owner, signed in, with their
clients, services and seeds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import strawberry
from starlette.applications import Starlette

from storyframe.app import create_app
from storyframe.db.tables import utcnow
from storyframe.domain.image_provider import ImageProvider
from storyframe.domain.ports import BlobStorage
from storyframe.runtime import Runtime
from storyframe.services.accounts import Session as AccountSession
from storyframe.services.container import Services
from storyframe.settings import Settings
from tests.support.clients import GraphQLClient, http_client
from tests.support.ids import known
from tests.support.seeds import Seeds, seeds_for

OWNER_EMAIL = "owner@storyframe.test"
OWNER_PASSWORD = "a long and quiet river"


def settings_for(database_url: str | None, data_dir: Path, **overrides: Any) -> Settings:
    """The settings of a test app on the database, then `overrides`; what neither names is read
    from the environment, as the app reads it."""
    defaults: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        # Cheap password hashing: the tests sign many people up; production keeps the defaults.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        # Placeholder images, whatever the environment says; OpenAI tests use a fake server.
        "openai_api_key": None,
        # The snapshot that proves a refusal changed nothing reads every object at once, at
        # the largest pages; the tests of the cost limit set it themselves.
        "max_query_cost": 10**12,
        # A test that ends with a generation still held in a fake does not wait long for it
        # at shutdown; the tests of shutdown set it themselves.
        "generation_shutdown_grace_seconds": 0.5,
    }
    return Settings(**{**defaults, **overrides})


def settings_with(settings: Settings, **overrides: Any) -> Settings:
    """`settings` with some fields changed, as given: unvalidated, so that a test may go below
    the bounds the environment is held to (a cost limit of 8, say)."""
    return settings.model_copy(update=overrides)


def build_app(
    settings: Settings,
    *,
    schema: strawberry.Schema | None = None,
    provider: ImageProvider | None = None,
    storage: BlobStorage | None = None,
    clock: Callable[[], datetime] = utcnow,
    **overrides: Any,
) -> Starlette:
    """The app of `settings` with `overrides`; `schema`, `provider`, `storage` and `clock` take
    the place of what the settings would build. Its lifespan closes it (as a TestClient runs
    it); otherwise use `app_with`."""
    if overrides:
        settings = settings_with(settings, **overrides)
    return create_app(settings, schema, provider=provider, storage=storage, clock=clock)


@asynccontextmanager
async def app_with(
    settings: Settings,
    *,
    schema: strawberry.Schema | None = None,
    provider: ImageProvider | None = None,
    storage: BlobStorage | None = None,
    clock: Callable[[], datetime] = utcnow,
    **overrides: Any,
) -> AsyncIterator[Starlette]:
    """The app `build_app` builds, running (its lifespan started: the job runner takes
    generations), and closed afterwards."""
    app = build_app(
        settings, schema=schema, provider=provider, storage=storage, clock=clock, **overrides
    )
    async with app.router.lifespan_context(app):
        yield app


async def sign_in_owner(runtime: Runtime, *, new: bool = True) -> AccountSession:
    """The owner's session: signed up, or logged in where another app on the same database
    signed them up (`new=False`)."""
    enter = runtime.accounts.sign_up if new else runtime.accounts.log_in
    return await enter(OWNER_EMAIL, OWNER_PASSWORD, "tests")


def services_of(runtime: Runtime, session: AccountSession) -> Services:
    """The services acting for the session's user: what they create, their clients see."""
    return runtime.services_for(known(session.user.id))


def seeds_of(runtime: Runtime, session: AccountSession) -> Seeds:
    """Seeds recorded on behalf of the session's user."""
    return seeds_for(runtime, known(session.user.id))


@dataclass(frozen=True, slots=True)
class OwnedApp:
    """An app with the owner signed in, and what acts for them."""

    app: Starlette
    runtime: Runtime
    owner: AccountSession
    http: httpx.AsyncClient
    gql: GraphQLClient
    services: Services
    seeds: Seeds


@asynccontextmanager
async def owned_app(
    settings: Settings,
    *,
    new_owner: bool = True,
    provider: ImageProvider | None = None,
    storage: BlobStorage | None = None,
    **overrides: Any,
) -> AsyncIterator[OwnedApp]:
    """`app_with`'s app, the owner signed in (see `sign_in_owner`) with a client of theirs."""
    async with app_with(settings, provider=provider, storage=storage, **overrides) as app:
        runtime: Runtime = app.state.runtime
        owner = await sign_in_owner(runtime, new=new_owner)
        async with http_client(app, owner.token) as http:
            yield OwnedApp(
                app=app,
                runtime=runtime,
                owner=owner,
                http=http,
                gql=GraphQLClient(http),
                services=services_of(runtime, owner),
                seeds=seeds_of(runtime, owner),
            )
