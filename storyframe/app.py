"""The app factory: settings → database → services → GraphQL schema → Starlette routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import strawberry

# Strawberry's own HTTP errors: raised by its view, from the library its view is built on.
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError, GraphQLSchema
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.tools import merge_types
from strawberry.types import ExecutionResult

from storyframe.db.accounts import SqlAccountStore
from storyframe.db.blobs import SqlBlobIndex
from storyframe.db.engine import create_engine, session_factory
from storyframe.db.generations import SqlStaleGenerations
from storyframe.db.outage import Outage, is_unreachable, watch
from storyframe.db.reader import SqlReader
from storyframe.db.repository import SqlUnitOfWork
from storyframe.graphql_http import JSON, GraphQLOverHTTP, response_media_type
from storyframe.guards import (
    PREFLIGHT_HEADERS,
    BodyLimit,
    MultipartCsrf,
    TimeLimit,
    WebSocketOrigins,
    error_body,
)
from storyframe.multipart import files_in_place
from storyframe.persisted import PersistedQueries, Refusal
from storyframe.providers.openai import build_openai_provider
from storyframe.providers.placeholder import PlaceholderProvider
from storyframe.resolvers.accounts import AccountMutation, AccountQuery
from storyframe.resolvers.generation import GenerationMutation, GenerationQuery
from storyframe.resolvers.loaders import make_loaders
from storyframe.resolvers.mutation import Mutation
from storyframe.resolvers.query import Query
from storyframe.resolvers.uploads import UploadMutation
from storyframe.schema.context import Context, Loaders
from storyframe.schema.errors import SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE, MaskErrors
from storyframe.schema.limits import (
    CheckDocuments,
    DocumentChecks,
    Limits,
    ListBound,
    length_of,
)
from storyframe.schema.relations import resolve_relations_directly
from storyframe.services.accounts import AccountService, LoginLimits, Viewer
from storyframe.services.chats import MAX_ATTACHMENTS
from storyframe.services.container import Media, Services
from storyframe.services.files import FileJanitor
from storyframe.services.generation import MAX_IMAGES, Generator, ImageDefaults, Sweep
from storyframe.services.imaging import DecodeSlots, ImageLimits
from storyframe.services.limits import ListLimits
from storyframe.services.models import IMAGE_MODELS
from storyframe.services.pages import MAX_PAGE
from storyframe.services.passwords import Passwords
from storyframe.services.ports import BlobStorage
from storyframe.services.providers import ImageProvider
from storyframe.services.ratelimit import SlidingWindow
from storyframe.services.temporaries import Temporaries
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage
from storyframe.storage.media import media_endpoint

LOGIN_WINDOW_SECONDS = 15 * 60
MAX_USER_ERROR_PATH = 4
"""The longest `UserError.field`: an input field, an index, and a field of that item."""
DRAIN_SECONDS = 30
"""How long shutdown waits for running generations before it cancels them."""
RETRY_AFTER_SECONDS = 5
"""How long a client is asked to wait before trying again while the database is unreachable."""


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """MaskErrors logs the unexpected errors with their ids; expected ones are not news."""


def build_schema(
    settings: Settings | None = None, *, direct_relations: bool = True
) -> strawberry.Schema:
    """The schema; `direct_relations=False` leaves relation fields to Strawberry's resolver
    wrappers (the same answers, slower), for comparison."""
    settings = settings or Settings()
    checks_of = document_checks(settings)
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        MaskErrors,
        lambda: CheckDocuments(checks=checks_of),
    ]
    schema = Schema(
        query=merge_types("Query", (Query, AccountQuery, GenerationQuery)),
        mutation=merge_types(
            "Mutation", (AccountMutation, Mutation, UploadMutation, GenerationMutation)
        ),
        extensions=extensions,
    )
    return resolve_relations_directly(schema) if direct_relations else schema


def document_checks(settings: Settings) -> Callable[[GraphQLSchema], DocumentChecks]:
    """The document checks of a schema, built on its first request and kept with it."""
    limits = Limits(
        max_tokens=settings.max_tokens,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_cost=settings.max_query_cost,
        introspection=settings.introspection,
    )
    built: dict[int, DocumentChecks] = {}

    def checks_of(schema: GraphQLSchema) -> DocumentChecks:
        checks = built.get(id(schema))
        if checks is None or checks.schema is not schema:
            checks = built[id(schema)] = DocumentChecks(schema, limits, list_bounds(settings))
        return checks

    return checks_of


def list_bounds(settings: Settings) -> dict[tuple[str, str], ListBound]:
    """The longest each plain (not paginated) list of the schema can be: the cost limit
    multiplies by these, so each is enforced where the list grows."""
    return {
        ("Video", "frames"): settings.max_frames_per_video,
        ("Video", "mainChats"): settings.max_main_chats_per_video,
        ("Image", "appearsIn"): settings.max_image_places,
        ("Message", "images"): MAX_IMAGES,
        ("Message", "attachedImages"): MAX_ATTACHMENTS,
        ("Generation", "errors"): MAX_IMAGES,
        ("Query", "nodes"): length_of("ids", MAX_PAGE),
        # The catalogue, and the configured model when the catalogue does not know it.
        ("Query", "imageModels"): len(IMAGE_MODELS) + 1,
        ("ImageModel", "sizes"): MAX_PAGE,
        ("ImageModel", "qualities"): MAX_PAGE,
        ("UploadImagesPayload", "images"): settings.max_upload_files,
        # A refusal names the input at fault: one error, or one per file of an upload.
        ("*", "userErrors"): settings.max_upload_files,
        ("UserError", "field"): MAX_USER_ERROR_PATH,
    }


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
    list_limits: ListLimits
    outage: Outage = field(default_factory=Outage)

    def services_for(self, user_id: int) -> Services:
        return Services.build(
            SqlUnitOfWork(self.sessions, user_id),
            SqlReader(self.sessions, user_id),
            self.media,
            self.generator,
            self.list_limits,
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
    temporaries = build_temporaries(settings, storage)
    janitor = FileJanitor(SqlBlobIndex(sessions), storage)
    limits = ImageLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    # One set for the process, uploads and generations alike: what decoding images may hold
    # in memory at once.
    decodes = DecodeSlots(settings.max_concurrent_decodes)
    media = Media(storage, janitor, limits, settings.max_upload_files, temporaries, decodes=decodes)
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
        temporaries=temporaries,
        decodes=decodes,
    )
    sweep = Sweep(SqlStaleGenerations(sessions), generator, DRAIN_SECONDS)
    list_limits = ListLimits(
        frames_per_video=settings.max_frames_per_video,
        main_chats_per_video=settings.max_main_chats_per_video,
        image_places=settings.max_image_places,
    )
    return Runtime(
        settings, engine, sessions, accounts, media, janitor, generator, sweep, list_limits
    )


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


def build_temporaries(settings: Settings, storage: BlobStorage) -> Temporaries:
    """The data directory's folder of temporary files; local storage writes its own beside
    the files they become, to rename them into place."""
    if isinstance(storage, LocalStorage):
        return Temporaries(settings.temp_dir, storage.partial_writes)
    return Temporaries(settings.temp_dir)


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


class StoryframeGraphQL(GraphQLOverHTTP):
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
        self.persisted_queries = PersistedQueries(runtime.settings.persisted_queries)

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
        mutation over GET, a token that cannot be read while the database is unreachable)
        gets a JSON error with a code, like every other error, not text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self.run(request)
        except HTTPException as refused:
            code = _HTTP_ERROR_CODES.get(refused.status_code, "BAD_REQUEST")
            headers = None
            if isinstance(refused, Refusal):  # persisted queries' own codes
                code, headers = refused.code, refused.headers
            response = Response(
                error_body(refused.reason, code),
                status_code=refused.status_code,
                headers=headers,
                media_type=response_media_type(request.headers.get("accept")) or JSON,
            )
        except Exception as error:
            if not is_unreachable(error):
                raise
            self._runtime.outage.refused(error)
            response = Response(
                error_body(UNAVAILABLE_MESSAGE, SERVICE_UNAVAILABLE),
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                media_type=response_media_type(request.headers.get("accept")) or JSON,
            )
        await response(scope, receive, send)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        unreachable = [
            e.original_error
            for e in result.errors or ()
            if e.original_error is not None and is_unreachable(e.original_error)
        ]
        if unreachable:
            self._runtime.outage.refused(unreachable[0])
        return await super().process_result(request, result)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """As Strawberry's; 503 with `Retry-After` when every error is the database's absence."""
        response = super().create_response(response_data, sub_response)
        results = response_data if isinstance(response_data, list) else [response_data]
        if all(_only_unavailable(result) for result in results):
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, str]:
        """The operation of a multipart request (the GraphQL multipart request spec) with its
        files in place. As Strawberry's, but whatever does not fit the spec is refused with a
        400 before anything runs (a body that does not parse, an `operations` or `map` of the
        wrong shape, a `map` that names no file or a path that leads to no `null` in
        `operations`), where Strawberry would answer some of it with a 500 in text."""
        try:
            form = await request.get_form_data()
        except (MultiPartException, StarletteHTTPException, ValueError) as error:
            detail = getattr(error, "detail", None) or getattr(error, "message", None)
            reason = f"Unable to parse the multipart body: {detail}" if detail else None
            raise HTTPException(400, reason or "Unable to parse the multipart body") from error
        try:
            operations = self._multipart_json(form.form, "operations")
            mapping = self._multipart_json(form.form, "map", "{}")  # no files, when absent
            return files_in_place(operations, mapping, form.files)
        except HTTPException:
            close = getattr(form.form, "close", None)  # the parts spooled to files, if any
            if close is not None:
                await close()
            raise

    def _multipart_json(
        self, fields: Mapping[str, Any], name: str, absent: str | None = None
    ) -> object:
        value = fields.get(name, absent)
        if not isinstance(value, str):
            raise HTTPException(400, f"A multipart request needs `{name}` as a text field")
        try:
            return self.decode_json(value)
        except ValueError:
            raise HTTPException(400, f"The multipart field `{name}` is not valid JSON") from None

    def decode_json(self, data: str | bytes) -> object:
        # orjson is strict where `json` is lenient: it refuses lone UTF-16 surrogates (which no
        # database can store), NaN and Infinity, as the JSON standard does.
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: over WebSocket, bytes go out as binary frames, which
        # graphql-transport-ws clients (browsers' graphql-ws) cannot parse.
        return orjson.dumps(data).decode()


def _only_unavailable(result: GraphQLHTTPResponse) -> bool:
    """Whether the result has errors, all of them the database's absence."""
    errors = result.get("errors") or []
    return bool(errors) and all(
        isinstance(error, dict)
        and isinstance(extensions := error.get("extensions"), dict)
        and extensions.get("code") == SERVICE_UNAVAILABLE
        for error in errors
    )


def create_app(
    settings: Settings | None = None, schema: strawberry.Schema | None = None
) -> Starlette:
    settings = settings or Settings()
    runtime = build_runtime(settings)
    watch(runtime.engine, runtime.outage)
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
