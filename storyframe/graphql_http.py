"""GraphQL over HTTP as Storyframe speaks it, on top of Strawberry's ASGI view: the response
media types (`application/graphql-response+json` for clients that ask for it, with the status
codes the GraphQL-over-HTTP specification gives it; `application/json` as before for everyone
else) and automatic persisted queries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.execution import PreExecutionError

from storyframe.persisted import PersistedQueries
from storyframe.schema.request_context import RequestContext

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# What a response can be, application/json first: it wins a tie (`*/*`, `application/*`).
_MEDIA_TYPES = (JSON, GRAPHQL_RESPONSE_JSON)


class _Range(NamedTuple):
    type: str
    subtype: str
    q: float
    position: int


class _Rank(NamedTuple):
    """How much an `Accept` header wants a media type; a greater rank is preferred."""

    q: float
    specificity: int  # 2: named exactly, 1: `type/*`, 0: `*/*`
    earliness: int  # minus the position in the header: the earlier named, the greater


def response_media_type(accept: str | None) -> str | None:
    """The media type to answer a GraphQL request with, by its `Accept` header: the acceptable
    one of the highest q-value (then the most specifically named, then the first named), with
    application/json on a tie and when there is no header; None when neither is acceptable."""
    if accept is None or not accept.strip():
        return JSON
    ranges = list(_ranges(accept))
    chosen: str | None = None
    best: _Rank | None = None
    for media_type in _MEDIA_TYPES:
        rank = _rank(media_type, ranges)
        if rank is not None and rank.q > 0 and (best is None or rank > best):
            chosen, best = media_type, rank
    return chosen


def executed(result: ExecutionResult) -> bool:
    """Whether the operation ran. A request that failed before (a syntax or validation error,
    variables that do not coerce) has nothing to show as `data`: its errors have no path."""
    if isinstance(result, PreExecutionError):
        return False
    return result.data is not None or not result.errors or any(e.path for e in result.errors)


def _rank(media_type: str, ranges: list[_Range]) -> _Rank | None:
    """The rank the most specific range matching `media_type` gives it (RFC 9110, 12.5.1)."""
    main, sub = media_type.split("/")
    ranks = [
        _Rank(r.q, specificity, -r.position)
        for r in ranges
        if (specificity := _specificity(r, main, sub)) is not None
    ]
    if not ranks:
        return None
    return max(ranks, key=lambda rank: (rank.specificity, rank.earliness))


def _specificity(media_range: _Range, main: str, sub: str) -> int | None:
    if media_range.type == "*" and media_range.subtype == "*":
        return 0
    if media_range.type != main:
        return None
    if media_range.subtype == "*":
        return 1
    return 2 if media_range.subtype == sub else None


def _ranges(accept: str) -> Iterator[_Range]:
    """The well-formed media ranges of an `Accept` header; the others are ignored."""
    for position, item in enumerate(accept.split(",")):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        main, slash, sub = media_range.lower().partition("/")
        if not slash or not main or not sub or (main == "*" and sub != "*"):
            continue
        q = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0 <= q <= 1:
            yield _Range(main, sub, q, position)


class GraphQLOverHTTP(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view, answering in the media type the request accepts (406 when it
    accepts neither), with automatic persisted queries (`persisted_queries`, set by the app).
    A refusal (`HTTPException`) is for the subclass to answer, in `response_media_type`."""

    persisted_queries: PersistedQueries

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # A GET with a persisted query's hash and no `query` asks for data, not for the IDE.
        if "extensions" in request.query_params:
            return False
        return super().should_render_graphql_ide(request)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        # What create_response answers in; None when the request accepts neither.
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: RequestContext,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        if sub_response.media_type is None:
            raise HTTPException(406, f"Accept must allow {JSON} or {GRAPHQL_RESPONSE_JSON}")
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: RequestContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        execute_single = super().execute_single

        async def run(data: GraphQLRequestData) -> ExecutionResult:
            return await execute_single(
                request, request_adapter, sub_response, context, root_value, data
            )

        return await self.persisted_queries.execute(request_data, request_adapter.method, run)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if not executed(result) and (
            response_media_type(request.headers.get("accept")) == GRAPHQL_RESPONSE_JSON
        ):
            # Nothing ran, so there is no `data`, not even null: that is what the status says.
            del response["data"]
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE_JSON:
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
            failed = not isinstance(response_data, list) and "data" not in response_data
            if failed and not sub_response.status_code:
                response.status_code = 400
        results = response_data if isinstance(response_data, list) else [response_data]
        self.finish_response(response, results)
        return response

    def finish_response(self, response: Response, results: list[GraphQLHTTPResponse]) -> None:
        """A subclass's last word on a response made of `results` (its status, its headers)."""
