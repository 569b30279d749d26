"""The GraphQL endpoint of the app: Strawberry's view, with the viewer read from the token and
every refusal answered as JSON with a code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import strawberry

# Strawberry's own HTTP errors: raised by its view, from the library its view is built on.
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from storyframe.db.outage import is_unreachable
from storyframe.domain.ports import Viewer
from storyframe.graphql_http import JSON, GraphQLOverHTTP, response_media_type
from storyframe.guards import (
    error_body,
)
from storyframe.multipart import files_in_place
from storyframe.persisted import PersistedQueries, Refusal
from storyframe.runtime import Runtime
from storyframe.schema.errors import SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE
from storyframe.schema.request_context import RequestContext
from storyframe.web.graphiql import graphiql_response

RETRY_AFTER_SECONDS = 5
"""How long a client is asked to wait before trying again while the database is unreachable."""


_CONTEXT = "storyframe.context"
"""Where a request's scope keeps its GraphQL context."""


def _raise_unread(request: Request) -> None:
    """The error that kept the request's token from being read, if one did (`Identify`)."""
    context = request.scope.get(_CONTEXT)
    if isinstance(context, RequestContext) and context.unread is not None:
        raise context.unread


def _release(request: Request) -> None:
    """The request is over: its context lets go of what it loaded (see `Loaders.close`)."""
    context = request.scope.get(_CONTEXT)
    if isinstance(context, RequestContext):
        context.release()


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
    ) -> RequestContext:
        context = RequestContext(self._runtime, request)
        if isinstance(request, Request):
            request.scope[_CONTEXT] = context  # released once the response has been sent
            # Read just before the operation runs, if it needs a viewer (`Identify`): not
            # while an upload's body arrives, not at all for `{ __typename }`.
            context.token = bearer_token(request.headers.get("authorization"))
        return context

    async def on_ws_connect(self, context: RequestContext) -> dict[str, object] | None:
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

    async def render_graphql_ide(self, request: Request) -> Response:
        """Storyframe's own GraphiQL page, which loads nothing from elsewhere."""
        return graphiql_response()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As Strawberry's, but a request refused before execution (not JSON, no query, a
        mutation over GET, a token that cannot be read while the database is unreachable)
        gets a JSON error with a code, like every other error, not text."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            # The token lookup and every read of the request share one connection.
            async with self._runtime.reads.held():
                try:
                    response = await self.run(request)
                except BaseException:  # cancelled (a time limit), say: stop its reads first
                    _release(request)
                    raise
                _raise_unread(request)
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
        try:
            await response(scope, receive, send)
        finally:
            _release(request)

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

    def finish_response(self, response: Response, results: list[GraphQLHTTPResponse]) -> None:
        """503 with `Retry-After` when every error is the database's absence."""
        if all(_only_unavailable(result) for result in results):
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)

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
