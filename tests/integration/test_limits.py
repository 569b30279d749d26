"""Request limits: each one refuses with a clear error, and none answers 500."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from storyframe.db.engine import create_engine
from storyframe.guards import BodyLimit, TimeLimit
from storyframe.runtime import Runtime
from storyframe.schema.ids import encode_id
from storyframe.services.accounts import Session as AccountSession
from storyframe.services.container import Services
from storyframe.settings import Settings
from tests.support.apps import app_with
from tests.support.clients import GraphQLClient, client_of, http_client, preflight
from tests.support.scenes import a_full_project
from tests.support.seeds import Seeds
from tests.support.sql import dump

# With max_query_depth=3: the root field is at depth 0.
DEPTH_3 = "query AtTheLimit { projects { nodes { videos { totalCount } } } }"
DEPTH_4 = "query TooDeep { projects { nodes { videos { nodes { id } } } } }"
# With max_aliases=2.
TWO_ALIASES = "query { a: __typename b: __typename }"
THREE_ALIASES = "query { a: __typename b: __typename c: __typename }"
# With max_tokens=100: `query`, `{` and `}` count too, so 97 fields make 100 tokens.
TOKENS_100 = "query { " + "__typename " * 97 + "}"
TOKENS_101 = "query { " + "__typename " * 98 + "}"

PROJECTS_PAGE = "query($first: Int) { projects(first: $first) { totalCount } }"
GALLERY_PAGE = """
query($id: ID!, $first: Int) { project(id: $id) { gallery(first: $first) { totalCount } } }
"""
MESSAGES_PAGE = """
query($id: ID!, $first: Int) { frame(id: $id) { messages(first: $first) { totalCount } } }
"""
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
CREATE_PROJECT = 'mutation { createProject(input: {name: "Batched"}) { project { id } } }'
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "Project") { name } }'
VIEWER = "query { viewer { email } }"

ALLOWED_ORIGIN = "https://app.storyframe.test"
FOREIGN_ORIGIN = "https://elsewhere.test"


def _messages(body: dict[str, Any]) -> list[str]:
    return [error["message"] for error in body["errors"]]


def _refusal(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The message and the extensions of the one error of a document refused before it ran."""
    assert body["data"] is None
    (error,) = body["errors"]
    return error["message"], error["extensions"]


@pytest.fixture
async def limited(settings: Settings, owner: AccountSession) -> AsyncIterator[GraphQLClient]:
    """The owner's client of an app with small query limits."""
    async with (
        app_with(settings, max_query_depth=3, max_aliases=2, max_tokens=100) as app,
        client_of(app, owner.token) as gql,
    ):
        yield gql


# --- the shape of queries ---------------------------------------------------------------------


async def test_a_query_at_the_depth_limit_runs(limited: GraphQLClient) -> None:
    # when
    data = await limited.data(DEPTH_3)

    # then
    assert data == {"projects": {"nodes": []}}


async def test_a_query_over_the_depth_limit_is_refused(limited: GraphQLClient) -> None:
    # when
    body = await limited.execute(DEPTH_4)

    # then
    assert _refusal(body) == (
        "operation `TooDeep` is 4 fields deep; the limit is 3",
        {"code": "MAX_DEPTH_EXCEEDED", "depth": 4, "limit": 3},
    )


@pytest.mark.parametrize(
    ("at_the_limit", "answer", "over_the_limit", "message", "extensions"),
    [
        pytest.param(
            TWO_ALIASES,
            {"a": "Query", "b": "Query"},
            THREE_ALIASES,
            "the document has 3 aliases; the limit is 2",
            {"code": "MAX_ALIASES_EXCEEDED", "aliases": 3, "limit": 2},
            id="aliases",
        ),
        pytest.param(
            TOKENS_100,
            {"__typename": "Query"},
            TOKENS_101,
            "the document has more than 100 tokens",
            {"code": "MAX_TOKENS_EXCEEDED", "limit": 100},
            id="tokens",
        ),
    ],
)
async def test_a_document_over_the_limit_is_refused(
    limited: GraphQLClient,
    at_the_limit: str,
    answer: dict[str, Any],
    over_the_limit: str,
    message: str,
    extensions: dict[str, Any],
) -> None:
    # when
    allowed = await limited.data(at_the_limit)
    body = await limited.execute(over_the_limit)

    # then
    assert allowed == answer
    assert _refusal(body) == (message, extensions)


async def test_the_limits_follow_the_settings(gql: GraphQLClient) -> None:
    # given: the app of the default settings, whose limits are higher

    # when
    depth = await gql.data(DEPTH_4)
    aliases = await gql.data(THREE_ALIASES)
    tokens = await gql.data(TOKENS_101)

    # then
    assert depth == {"projects": {"nodes": []}}
    assert aliases == {"a": "Query", "b": "Query", "c": "Query"}
    assert tokens == {"__typename": "Query"}


# --- pages ------------------------------------------------------------------------------------


@pytest.fixture
async def owned_ids(services: Services, seeds: Seeds) -> dict[str, str]:
    ids = await a_full_project(services, seeds, "Paged")
    return {"project": ids.project, "frame": ids.frame}


@pytest.mark.parametrize("first", [101, -1])
@pytest.mark.parametrize(
    ("document", "parent"),
    [(PROJECTS_PAGE, None), (GALLERY_PAGE, "project"), (MESSAGES_PAGE, "frame")],
    ids=["projects", "gallery", "messages"],
)
async def test_a_page_out_of_range_is_refused(
    gql: GraphQLClient, owned_ids: dict[str, str], document: str, parent: str | None, first: int
) -> None:
    # given
    variables: dict[str, Any] = {"first": first}
    if parent is not None:
        variables["id"] = owned_ids[parent]

    # when
    body = await gql.execute(document, variables)

    # then
    (error,) = body["errors"]
    assert error["message"] == "`first` must be between 0 and 100"
    assert error["extensions"] == {"code": "INVALID", "field": ["first"]}


async def test_a_page_of_a_hundred_is_allowed(gql: GraphQLClient) -> None:
    # when
    data = await gql.data(PROJECTS_PAGE, {"first": 100})

    # then
    assert data == {"projects": {"totalCount": 0}}


async def test_more_than_a_hundred_ids_at_once_are_refused(
    gql: GraphQLClient, owned_ids: dict[str, str]
) -> None:
    # when
    body = await gql.execute(NODES, {"ids": [owned_ids["project"]] * 101})

    # then
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "INVALID", "field": ["ids"]}


# --- the request body -------------------------------------------------------------------------


@pytest.fixture
async def small_bodies(
    settings: Settings, owner: AccountSession
) -> AsyncIterator[httpx.AsyncClient]:
    json = {"Content-Type": "application/json"}
    async with (
        app_with(settings, max_body_bytes=1024) as app,
        http_client(app, owner.token, headers=json) as http,
    ):
        yield http


def _body_of(size: int) -> bytes:
    """A GraphQL request of exactly `size` bytes."""
    empty = orjson.dumps({"query": "{ __typename }", "variables": {"padding": ""}})
    return orjson.dumps(
        {"query": "{ __typename }", "variables": {"padding": "x" * (size - len(empty))}}
    )


async def _in_chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 100):
        yield body[start : start + 100]


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "errors": [
            {
                "message": "request body is over 1024 bytes",
                "extensions": {"code": "REQUEST_TOO_LARGE"},
            }
        ]
    }


async def test_a_body_at_the_limit_is_answered(small_bodies: httpx.AsyncClient) -> None:
    # when
    response = await small_bodies.post("/graphql", content=_body_of(1024))

    # then
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_body_over_the_limit_is_refused(small_bodies: httpx.AsyncClient) -> None:
    # when
    response = await small_bodies.post("/graphql", content=_body_of(1025))

    # then
    _assert_too_large(response)


async def test_a_streamed_body_over_the_limit_is_refused(small_bodies: httpx.AsyncClient) -> None:
    # given: no Content-Length; the body is counted as it arrives
    body = _body_of(1025)

    # when
    response = await small_bodies.post("/graphql", content=_in_chunks(body))

    # then
    assert "content-length" not in response.request.headers
    _assert_too_large(response)


async def test_a_streamed_body_at_the_limit_is_answered(small_bodies: httpx.AsyncClient) -> None:
    # when
    response = await small_bodies.post("/graphql", content=_in_chunks(_body_of(1024)))

    # then
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_batch_is_refused_and_runs_nothing(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    # given
    before = await dump(runtime.engine)

    # when
    response = await http.post(
        "/graphql", json=[{"query": CREATE_PROJECT}, {"query": CREATE_PROJECT}]
    )

    # then
    assert response.status_code == 400
    assert "Batching is not enabled" in response.text
    assert await dump(runtime.engine) == before


# --- time ---------------------------------------------------------------------------------


async def _never_answers(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.Event().wait()


async def _answers(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})


async def _post(app: ASGIApp) -> httpx.Response:
    async with http_client(app) as http:
        return await http.post("/graphql", json={"query": "{ __typename }"})


async def test_a_request_over_the_time_limit_is_answered_503(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given
    guarded = TimeLimit(_never_answers, seconds=0.01)

    # when
    with caplog.at_level(logging.WARNING, logger="storyframe.guards"):
        response = await _post(guarded)

    # then
    assert response.status_code == 503
    assert response.json() == {
        "errors": [
            {
                "message": "the request took longer than 0.01 seconds",
                "extensions": {"code": "TIMEOUT"},
            }
        ]
    }
    assert [record.message for record in caplog.records] == ["request timed out"]


async def test_a_request_within_the_time_limit_passes() -> None:
    # given
    guarded = TimeLimit(_answers, seconds=60)

    # when
    response = await _post(guarded)

    # then
    assert response.status_code == 200
    assert response.text == "done"


async def test_the_app_guards_its_requests_as_the_settings_say(settings: Settings) -> None:
    # given
    async with app_with(settings, request_timeout_seconds=7.5, max_body_bytes=4096) as app:
        # when
        guards: dict[object, dict[str, Any]] = {m.cls: dict(m.kwargs) for m in app.user_middleware}
        changed = app.state.runtime.settings

    # then
    assert guards[TimeLimit] == {"seconds": 7.5}
    assert guards[BodyLimit] == {
        "max_bytes": 4096,
        "max_multipart_bytes": changed.max_upload_files * changed.max_image_bytes + 4096,
    }


# --- introspection and GraphiQL ---------------------------------------------------------------


@pytest.mark.parametrize("document", [INTROSPECTION, TYPE_INTROSPECTION], ids=["schema", "type"])
async def test_introspection_is_refused_when_turned_off(
    settings: Settings, owner: AccountSession, document: str
) -> None:
    # given
    async with app_with(settings, introspection=False) as app, client_of(app, owner.token) as gql:
        # when
        body = await gql.execute(document)
        viewer = await gql.data(VIEWER)

    # then
    assert body["data"] is None
    assert all("introspection has been disabled" in message for message in _messages(body))
    assert {error["extensions"]["code"] for error in body["errors"]} == {"INTROSPECTION_DISABLED"}
    assert viewer == {"viewer": {"email": owner.user.email}}


async def test_introspection_is_answered_by_default(anonymous_gql: GraphQLClient) -> None:
    # when
    data = await anonymous_gql.data(INTROSPECTION)

    # then
    assert data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_graphiql_is_served_by_default(anonymous_http: httpx.AsyncClient) -> None:
    # when
    response = await anonymous_http.get("/graphql", headers={"Accept": "text/html"})

    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_graphiql_is_not_served_when_turned_off(settings: Settings) -> None:
    # given
    async with app_with(settings, graphiql=False) as app, http_client(app) as http:
        # when
        response = await http.get("/graphql", headers={"Accept": "text/html"})

    # then
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


# --- CORS -------------------------------------------------------------------------------------


@pytest.fixture
async def cors_app(settings: Settings) -> AsyncIterator[Starlette]:
    async with app_with(settings, cors_origins=[ALLOWED_ORIGIN]) as app:
        yield app


async def test_a_preflight_from_an_allowed_origin_is_allowed(cors_app: Starlette) -> None:
    # when
    response = await preflight(cors_app, ALLOWED_ORIGIN, "authorization, content-type")

    # then
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers


async def test_a_preflight_from_another_origin_is_not_allowed(cors_app: Starlette) -> None:
    # when
    response = await preflight(cors_app, FOREIGN_ORIGIN, "authorization, content-type")

    # then
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(("origin", "allowed"), [(ALLOWED_ORIGIN, True), (FOREIGN_ORIGIN, False)])
async def test_a_response_names_only_an_allowed_origin(
    cors_app: Starlette, origin: str, allowed: bool
) -> None:
    # when
    async with http_client(cors_app, headers={"Origin": origin}) as http:
        response = await http.post("/graphql", json={"query": INTROSPECTION})

    # then
    assert response.status_code == 200
    assert ("access-control-allow-origin" in response.headers) is allowed


async def _waiting_on_a_lock(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT query FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        )
        return [row[0] for row in rows]


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # a lock held elsewhere
@pytest.mark.parametrize(
    ("table", "query"),
    [
        ("projects", "query { projects { totalCount } }"),
        ("frames", "query($id: ID!) { video(id: $id) { frames { id } } }"),
    ],
    ids=["resolver", "dataloader-batch"],
)
async def test_a_request_past_its_time_limit_stops_its_work(
    settings: Settings, owner: AccountSession, services: Services, table: str, query: str
) -> None:
    # given: a video, and its table locked by another transaction, so the read waits (in the
    # resolver itself, or in a DataLoader's batch, which runs as a task of its own)
    project = await services.projects.create("Locked")
    video = await services.videos.create(_pk(project.id), "Waiting")
    variables = {"id": encode_id("Video", _pk(video.id))} if "$id" in query else None
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as holder, holder.begin():
            await holder.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            async with (
                app_with(settings, request_timeout_seconds=1.0) as app,
                client_of(app, owner.token) as gql,
            ):
                # when
                response = await gql.http.post(
                    "/graphql", json={"query": query, "variables": variables}
                )
                # then: the read no longer waits, while the lock is still held
                for _ in range(600):
                    if not await _waiting_on_a_lock(engine):
                        break
                    await asyncio.sleep(0.05)
                waiting = await _waiting_on_a_lock(engine)
        assert response.status_code == 503
        assert waiting == []
    finally:
        await engine.dispose()


def _pk(value: int | None) -> int:
    assert value is not None
    return value
