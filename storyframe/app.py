"""The app factory: settings → database → services → GraphQL schema → Starlette routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from storyframe.db.engine import create_engine, session_factory
from storyframe.db.reader import SqlReader
from storyframe.db.repository import SqlUnitOfWork
from storyframe.resolvers.loaders import make_loaders
from storyframe.resolvers.mutation import Mutation
from storyframe.resolvers.query import Query
from storyframe.schema.context import Context
from storyframe.schema.errors import MaskErrors
from storyframe.schema.relations import resolve_relations_directly
from storyframe.services.container import Services
from storyframe.settings import Settings


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """MaskErrors logs the unexpected errors with their ids; expected ones are not news."""


def build_schema(*, direct_relations: bool = True) -> strawberry.Schema:
    """The schema; `direct_relations=False` leaves relation fields to Strawberry's resolver
    wrappers (the same answers, slower), for comparison."""
    schema = Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            MaskErrors,
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
        ],
    )
    return resolve_relations_directly(schema) if direct_relations else schema


@dataclass(frozen=True, slots=True)
class Runtime:
    """What one running app owns."""

    settings: Settings
    engine: AsyncEngine
    services: Services


def build_runtime(settings: Settings) -> Runtime:
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    services = Services.build(SqlUnitOfWork(sessions), SqlReader(sessions))
    return Runtime(settings, engine, services)


class StoryframeGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: strawberry.Schema, services: Services, graphiql: bool) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self._services = services

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(self._services, make_loaders(self._services), request)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def create_app(
    settings: Settings | None = None, schema: strawberry.Schema | None = None
) -> Starlette:
    settings = settings or Settings()
    runtime = build_runtime(settings)
    graphql = StoryframeGraphQL(schema or build_schema(), runtime.services, settings.graphiql)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            await runtime.services.reads.ping()
        except Exception as error:  # any failure to answer means not ready
            return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, 503)
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await runtime.engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        middleware=_middleware(settings),
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app


def _middleware(settings: Settings) -> list[Middleware]:
    if not settings.cors_origins:
        return []
    options: dict[str, Any] = {
        "allow_origins": settings.cors_origins,
        "allow_methods": ["GET", "POST", "OPTIONS"],
        "allow_headers": ["Authorization", "Content-Type"],
        "max_age": 600,
    }
    return [Middleware(CORSMiddleware, **options)]
