"""GraphQL over HTTP's media types: `application/graphql-response+json` for a client that asks
for it, with the specification's status codes (400 when nothing ran); `application/json`, always
200 for GraphQL errors, for everyone else; 406 for a client that accepts neither."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.clients import GraphQLClient

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
PROJECTS = "query Projects($first: Int) { projects(first: $first) { totalCount } }"
CREATE_PROJECT = 'mutation { createProject(input: {name: "Refused"}) { project { id } } }'
NO_ACCEPT = None

# Each fails before execution: nothing ran, so there is no `data` to show.
FAILING_BEFORE_EXECUTION = [
    pytest.param({"query": "query Broken { projects("}, id="syntax"),
    pytest.param({"query": "query Unknown { noSuchField }"}, id="validation"),
    pytest.param({"query": PROJECTS, "variables": {"first": "many"}}, id="variables"),
]


@pytest.fixture
def dialect() -> str:
    """Content negotiation happens before the database is asked anything: one dialect."""
    return "sqlite"


async def send(http: httpx.AsyncClient, accept: str | None, body: dict[str, Any]) -> httpx.Response:
    """POST `body` with `accept` as the Accept header, or none at all."""
    request = http.build_request("POST", "/graphql", json=body)
    del request.headers["accept"]
    if accept is not None:
        request.headers["accept"] = accept
    return await http.send(request)


async def answered(
    http: httpx.AsyncClient, media_type: str, body: dict[str, Any], status: int
) -> Any:
    """The JSON answering `body` sent accepting `media_type`, which must come back as `status`
    in that media type."""
    response = await send(http, media_type, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == media_type
    return response.json()


async def test_a_query_that_runs_is_answered_200_in_the_media_type_asked_for(
    http: httpx.AsyncClient,
) -> None:
    answer = await answered(http, GRAPHQL_RESPONSE, {"query": PROJECTS}, 200)

    assert answer == {"data": {"projects": {"totalCount": 0}}}


@pytest.mark.parametrize("body", FAILING_BEFORE_EXECUTION)
async def test_a_request_that_fails_before_execution_is_a_400_without_data(
    http: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    answer = await answered(http, GRAPHQL_RESPONSE, body, 400)

    assert "data" not in answer
    assert answer["errors"]


@pytest.mark.parametrize("body", FAILING_BEFORE_EXECUTION)
async def test_as_json_the_same_request_is_still_a_200_with_null_data(
    http: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    answer = await answered(http, JSON, body, 200)

    assert answer["data"] is None
    assert answer["errors"]


async def test_a_request_that_ran_is_a_200_even_when_its_fields_failed(
    anonymous_http: httpx.AsyncClient,
) -> None:
    # projects needs a token: the field fails, and, being non-null, nulls all of `data`
    query = "{ projects(first: 1) { totalCount } }"
    answer = await answered(anonymous_http, GRAPHQL_RESPONSE, {"query": query}, 200)

    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert answer["errors"][0]["path"] == ["projects"]


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),  # Apollo Client's
        (f"{JSON};q=0.9, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON}", GRAPHQL_RESPONSE),  # a tie: the first named
        (f"text/html, {GRAPHQL_RESPONSE};q=0.1", GRAPHQL_RESPONSE),
        (f"application/*;q=0.5, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
        (f"{JSON}, {GRAPHQL_RESPONSE}", JSON),
        (f"{JSON}; charset=utf-8", JSON),
        (JSON, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (f"*/*, {GRAPHQL_RESPONSE};q=0", JSON),
        (NO_ACCEPT, JSON),
        ("", JSON),
    ],
)
async def test_the_accept_header_chooses_the_media_type_by_preference(
    http: httpx.AsyncClient, accept: str | None, media_type: str
) -> None:
    response = await send(http, accept, {"query": "query Broken {"})

    assert response.headers["content-type"] == media_type
    assert response.status_code == (400 if media_type == GRAPHQL_RESPONSE else 200)
    assert ("data" in response.json()) is (media_type == JSON)


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        "application/xml, text/*",
        f"{JSON};q=0",
        f"{GRAPHQL_RESPONSE};q=0, {JSON};q=0, text/plain",
        "not a media type",
    ],
)
async def test_a_request_accepting_neither_is_refused_with_406_and_nothing_runs(
    http: httpx.AsyncClient, gql: GraphQLClient, accept: str
) -> None:
    response = await send(http, accept, {"query": CREATE_PROJECT})

    assert response.status_code == 406
    assert response.headers["content-type"] == JSON
    assert response.json() == {
        "errors": [
            {
                "message": f"Accept must allow {JSON} or {GRAPHQL_RESPONSE}",
                "extensions": {"code": "NOT_ACCEPTABLE"},
            }
        ]
    }
    assert (await gql.data(PROJECTS))["projects"]["totalCount"] == 0


async def test_a_request_refused_before_parsing_is_answered_in_the_media_type_asked_for(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/graphql",
        content=b"not json",
        headers={"content-type": JSON, "accept": GRAPHQL_RESPONSE},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert response.json() == {
        "errors": [
            {
                "message": "Unable to parse request body as JSON",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }


async def test_a_query_over_get_is_negotiated_the_same_way(http: httpx.AsyncClient) -> None:
    headers = {"accept": GRAPHQL_RESPONSE}

    ran = await http.get("/graphql", params={"query": PROJECTS}, headers=headers)
    broken = await http.get("/graphql", params={"query": "{ nope }"}, headers=headers)

    assert (ran.status_code, ran.headers["content-type"]) == (200, GRAPHQL_RESPONSE)
    assert (broken.status_code, broken.headers["content-type"]) == (400, GRAPHQL_RESPONSE)
    assert "data" not in broken.json()


async def test_a_browser_asking_for_a_page_still_gets_the_graphql_ide(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/graphql", headers={"accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
