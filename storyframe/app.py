"""The app factory: settings → database → services → GraphQL schema → Starlette routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import strawberry

# Strawberry's own HTTP errors: raised by its view, from the library its view is built on.
from cross_web import HTTPException
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.tools import merge_types

from storyframe.db.accounts import SqlAccountStore
from storyframe.db.blobs import SqlBlobIndex
from storyframe.db.engine import create_engine, session_factory
from storyframe.db.generations import SqlStaleGenerations
from storyframe.db.reader import SqlReader
from storyframe.db.repository import SqlUnitOfWork
from storyframe.guards import (
    PREFLIGHT_HEADERS,
    BodyLimit,
    MultipartCsrf,
    TimeLimit,
    WebSocketOrigins,
    error_body,
)
from storyframe.providers.openai import build_openai_provider
from storyframe.providers.placeholder import PlaceholderProvider
from storyframe.resolvers.accounts import AccountMutation, AccountQuery
from storyframe.resolvers.generation import GenerationMutation, GenerationQuery
from storyframe.resolvers.loaders import make_loaders
from storyframe.resolvers.mutation import Mutation
from storyframe.resolvers.query import Query
from storyframe.resolvers.uploads import UploadMutation
from storyframe.schema.context import Context, Loaders
from storyframe.schema.errors import MaskErrors
from storyframe.schema.relations import resolve_relations_directly
from storyframe.services.accounts import AccountService, LoginLimits, Viewer
from storyframe.services.container import Media, Services
from storyframe.services.files import FileJanitor
from storyframe.services.generation import Generator, ImageDefaults, Sweep
from storyframe.services.imaging import ImageLimits
from storyframe.services.passwords import Passwords
from storyframe.services.ports import BlobStorage
from storyframe.services.providers import ImageProvider
from storyframe.services.ratelimit import SlidingWindow
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage
from storyframe.storage.media import media_endpoint

LOGIN_WINDOW_SECONDS = 15 * 60
DRAIN_SECONDS = 30
"""How long shutdown waits for running generations before it cancels them."""


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """MaskErrors logs the unexpected errors with their ids; expected ones are not news."""


def build_schema(
    settings: Settings | None = None, *, direct_relations: bool = True
) -> strawberry.Schema:
    """The schema; `direct_relations=False` leaves relation fields to Strawberry's resolver
    wrappers (the same answers, slower), for comparison."""
    settings = settings or Settings()
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        MaskErrors,
        lambda: ParserCache(maxsize=256),
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ValidationCache(maxsize=256),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    schema = Schema(
        query=merge_types("Query", (Query, AccountQuery, GenerationQuery)),
        mutation=merge_types(
            "Mutation", (AccountMutation, Mutation, UploadMutation, GenerationMutation)
        ),
        extensions=extensions,
    )
    return resolve_relations_directly(schema) if direct_relations else schema


@dataclass(frozen=True, slots=True)
class Runtime:
    """What one running app owns, and the scopes it hands each request."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    accounts: AccountService
    media: Media
    janitor: FileJanitor
    generator: Generator
    sweep: Sweep

    def services_for(self, user_id: int) -> Services:
        return Services.build(
            SqlUnitOfWork(self.sessions, user_id),
            SqlReader(self.sessions, user_id),
            self.media,
            self.generator,
        )

    async def aclose(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Let running generations finish, then close the provider's client and the database."""
        try:
            await self.generator.drain(drain_seconds)
            await self.generator.aclose()
        finally:
            await self.engine.dispose()

    def scope(self, user_id: int) -> tuple[Services, Loaders]:
        services = self.services_for(user_id)
        return services, make_loaders(services)


def build_runtime(settings: Settings) -> Runtime:
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    accounts = AccountService(
        SqlAccountStore(sessions),
        Passwords(settings.argon2_time_cost, settings.argon2_memory_kib),
        LoginLimits(
            per_email=SlidingWindow(settings.login_attempts_per_email, LOGIN_WINDOW_SECONDS),
            per_client=SlidingWindow(settings.login_attempts_per_client, LOGIN_WINDOW_SECONDS),
        ),
        timedelta(days=settings.token_ttl_days),
    )
    storage = build_storage(settings)
    janitor = FileJanitor(SqlBlobIndex(sessions), storage)
    limits = ImageLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    media = Media(storage, janitor, limits, settings.max_upload_files)
    generator = Generator(
        build_provider(settings),
        storage,
        janitor,
        limits,
        image_defaults(settings),
        settings.generation_concurrency,
        # A vision call (three tries of a third of the timeout), then image calls that may
        # wait for a free slot once, each with its rate-limit retries.
        budget_seconds=settings.openai_timeout_seconds * 3
        + settings.openai_max_retry_wait_seconds * settings.openai_rate_limit_retries
        + 10,
        vision_budget_seconds=settings.openai_timeout_seconds + 10,
    )
    sweep = Sweep(SqlStaleGenerations(sessions), generator, DRAIN_SECONDS)
    return Runtime(settings, engine, sessions, accounts, media, janitor, generator, sweep)


def image_defaults(settings: Settings) -> ImageDefaults:
    return ImageDefaults(
        image_model=settings.openai_image_model,
        vision_model=settings.openai_vision_model,
        size=settings.openai_image_size,
        quality=settings.openai_image_quality,
    )


def build_provider(settings: Settings) -> ImageProvider:
    """OpenAI when a key is configured; otherwise placeholder images made offline."""
    if settings.openai_api_key is None:
        return PlaceholderProvider()
    return build_openai_provider(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        image_timeout=settings.openai_timeout_seconds,
        rate_limit_retries=settings.openai_rate_limit_retries,
        max_retry_wait=settings.openai_max_retry_wait_seconds,
    )


def build_storage(settings: Settings) -> BlobStorage:
    if settings.storage_backend == "cloudinary":
        from storyframe.storage.cloudinary import CloudinaryStorage

        if not settings.cloudinary_url:
            raise ValueError("STORAGE_BACKEND=cloudinary needs CLOUDINARY_URL")
        return CloudinaryStorage(settings.cloudinary_url)
    return LocalStorage(settings.media_dir, settings.resolved_public_url)


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


_HTTP_ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class StoryframeGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: strawberry.Schema, runtime: Runtime) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if runtime.settings.graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            # Strawberry checks WebSocket origins itself, and allows only same-origin ones
            # unless told which others: the same list as CORS and WebSocketOrigins.
            allowed_origins=runtime.settings.cors_origins,
            multipart_uploads_enabled=True,
        )
        self._runtime = runtime

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        context = Context(self._runtime, request)
        if isinstance(request, Request):
            context.viewer = await self._viewer(bearer_token(request.headers.get("authorization")))
        return context

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """The token comes in `connection_init`'s payload: `{"Authorization": "Bearer …"}`."""
        params = context.connection_params or {}
        raw = params.get("Authorization") or params.get("authorization")
        token = bearer_token(raw) if isinstance(raw, str) else None
        context.viewer = await self._viewer(token)
        if context.viewer is None:
            raise ConnectionRejectionError({"message": "a valid token is required"})
        return None

    async def _viewer(self, token: str | None) -> Viewer | None:
        return await self._runtime.accounts.authenticate(token) if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As Strawberry's, but a request refused before execution (not JSON, no query, a
        mutation over GET) gets a JSON error with a code, like every other error, not text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as refused:
            code = _HTTP_ERROR_CODES.get(refused.status_code, "BAD_REQUEST")
            response = Response(
                error_body(refused.reason, code),
                status_code=refused.status_code,
                media_type="application/json",
            )
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        # orjson is strict where `json` is lenient: it refuses lone UTF-16 surrogates (which no
        # database can store), NaN and Infinity, as the JSON standard does.
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: over WebSocket, bytes go out as binary frames, which
        # graphql-transport-ws clients (browsers' graphql-ws) cannot parse.
        return orjson.dumps(data).decode()


def create_app(
    settings: Settings | None = None, schema: strawberry.Schema | None = None
) -> Starlette:
    settings = settings or Settings()
    runtime = build_runtime(settings)
    graphql = StoryframeGraphQL(schema or build_schema(settings), runtime)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            await runtime.services_for(0).reads.ping()
        except Exception as error:  # any failure to answer means not ready
            return JSONResponse({"status": "unavailable", "reason": type(error).__name__}, 503)
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        sweeping = asyncio.create_task(runtime.sweep.forever(settings.generation_sweep_seconds))
        try:
            yield
        finally:
            sweeping.cancel()
            await asyncio.gather(sweeping, return_exceptions=True)
            await runtime.aclose()

    app = Starlette(
        routes=[
            # Every method reaches the view, which refuses all but GET and POST with a JSON error.
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            *_media_routes(runtime),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
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


def _middleware(settings: Settings) -> list[Middleware]:
    cors: dict[str, Any] = {
        "allow_origins": settings.cors_origins,
        "allow_methods": ["GET", "POST", "OPTIONS"],
        "allow_headers": [
            "Authorization",
            "Content-Type",
            *(h.decode() for h in PREFLIGHT_HEADERS),
        ],
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
        Middleware(MultipartCsrf),
        Middleware(TimeLimit, seconds=settings.request_timeout_seconds),
    ]
