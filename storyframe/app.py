"""The app factory: settings → database → services → GraphQL schema → Starlette routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import strawberry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

from storyframe.api_schema import build_schema
from storyframe.db.outage import watch
from storyframe.db.tables import utcnow
from storyframe.domain.image_provider import ImageProvider
from storyframe.domain.ports import BlobStorage
from storyframe.guards import (
    PREFLIGHT_HEADERS,
    BodyLimit,
    MultipartCsrf,
    TimeLimit,
    WebSocketOrigins,
)
from storyframe.health import health_routes
from storyframe.runtime import Runtime, build_runtime
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage
from storyframe.storage.media import media_endpoint
from storyframe.view import StoryframeGraphQL
from storyframe.web.assets import asset_routes
from storyframe.web.diagnostics import diagnostics_routes

STOP_TASKS_SECONDS = 5
"""How long shutdown waits for the background rounds (heartbeat, recovery) under way."""


def create_app(
    settings: Settings | None = None,
    schema: strawberry.Schema | None = None,
    *,
    provider: ImageProvider | None = None,
    storage: BlobStorage | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Starlette:
    """The app the settings describe; `provider`, `storage` and `clock` replace what the settings
    would build (see `build_runtime`)."""
    settings = settings or Settings()
    runtime = build_runtime(settings, provider=provider, storage=storage, clock=clock)
    for engine in runtime.engines:
        watch(engine, runtime.outage)
    graphql = StoryframeGraphQL(schema or build_schema(settings), runtime)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        tending_tasks: list[asyncio.Task[None]] = []
        await runtime.start()
        heartbeat = settings.generation_heartbeat_seconds
        tended = [(runtime.diagnostics_runner, runtime.diagnostics_store)]
        if not settings.generation_jobs_in_process:
            # A process that runs generations takes over those no process runs any more (and
            # ends them after their last attempt); one that does not, records them as failed.
            sweeping = runtime.sweep.forever(settings.generation_sweep_seconds)
            tasks.append(asyncio.create_task(sweeping))
        else:
            tended += [
                (runtime.runner, runtime.job_store),
                (runtime.exports_runner, runtime.export_store),
            ]
        for runner, store in tended:
            runner.start()
            await runner.tend_once(store, clock, heartbeat * 3)
            tending_tasks.append(
                asyncio.create_task(runner.tend(store, clock, heartbeat, heartbeat * 3))
            )
        try:
            yield
        finally:
            # Let a round under way end rather than cut a statement short (a driver's thread
            # may still be at work on it when the database closes).
            for runner, _store in tended:
                runner.stop_tending()
            if tending_tasks:
                await asyncio.wait(tending_tasks, timeout=STOP_TASKS_SECONDS)
            for task in [*tasks, *tending_tasks]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runtime.aclose()

    app = Starlette(
        routes=[
            # Every method reaches the view, which refuses all but GET and POST with a JSON error.
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            *_media_routes(runtime),
            *health_routes(runtime),
            *(asset_routes() if settings.graphiql else []),
            *diagnostics_routes(),
        ],
        middleware=_middleware(settings),
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


def _media_routes(runtime: Runtime) -> list[Route]:
    storage = runtime.media.storage
    if not isinstance(storage, LocalStorage):
        return []
    return [Route("/media/{key:path}", media_endpoint(storage), methods=["GET", "HEAD"])]


CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    *(h.decode() for h in PREFLIGHT_HEADERS),
    # What Apollo Client, OpenTelemetry (W3C trace context), Sentry and request-id
    # middleware add to a frontend's requests; `CORS_ALLOW_HEADERS` adds more.
    "Apollographql-Client-Name",
    "Apollographql-Client-Version",
    "Traceparent",
    "Tracestate",
    "Sentry-Trace",
    "Baggage",
    "X-Request-Id",
)
"""Request headers browsers may send from `CORS_ORIGINS`, whatever the settings add."""


def _middleware(settings: Settings) -> list[Middleware]:
    cors: dict[str, Any] = {
        "allow_origins": settings.cors_origins,
        "allow_methods": ["GET", "POST", "OPTIONS"],
        "allow_headers": [*CORS_ALLOW_HEADERS, *settings.cors_allow_headers],
        "max_age": 600,
    }
    return [
        Middleware(CORSMiddleware, **cors),
        Middleware(WebSocketOrigins, allowed=settings.cors_origins),
        Middleware(
            BodyLimit,
            max_bytes=settings.max_body_bytes,
            max_multipart_bytes=settings.max_upload_body_bytes,
        ),
        Middleware(MultipartCsrf, seconds=settings.request_timeout_seconds),
        Middleware(TimeLimit, seconds=settings.request_timeout_seconds),
    ]
