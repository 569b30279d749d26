"""Requests refused before a GraphQL operation runs still get a GraphQL-shaped JSON error with a
code, never a text page, and change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.clients import GraphQLClient

CREATE_PROJECT = """
mutation($name: String!) {
  createProject(input: {name: $name}) { project { id } userErrors { field code } }
}
"""


def _assert_refused(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body == {"errors": [{"message": message, "extensions": {"code": code}}]}


async def _create_project(http: httpx.AsyncClient, escaped_name: bytes) -> httpx.Response:
    """POST createProject with the name written into the JSON body as given, escapes and all."""
    query = CREATE_PROJECT.replace("\n", " ").replace('"', '\\"').encode()
    body = b'{"query": "%s", "variables": {"name": "%s"}}' % (query, escaped_name)
    return await http.post("/graphql", content=body, headers={"content-type": "application/json"})


async def _projects(gql: GraphQLClient) -> int:
    data = await gql.data("{ projects(first: 100) { edges { node { id } } } }")
    return len(data["projects"]["edges"])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"query": "{ __typename }"', id="truncated"),
        pytest.param(b"not json at all", id="text"),
        pytest.param(b'{"query": "{ __typename }", "variables": {"x": NaN}}', id="nan"),
    ],
)
async def test_a_body_that_is_not_json_is_refused_with_a_code(
    http: httpx.AsyncClient, body: bytes
) -> None:
    response = await http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )

    _assert_refused(response, 400, "BAD_REQUEST", "Unable to parse request body as JSON")


async def test_a_lone_surrogate_in_the_variables_is_refused_and_nothing_is_saved(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    # given a name no database can store: half of a UTF-16 pair, escaped as JSON allows
    name = b"a\\ud800b"

    # when
    response = await _create_project(http, name)

    # then
    _assert_refused(response, 400, "BAD_REQUEST", "Unable to parse request body as JSON")
    assert await _projects(gql) == 0


async def test_a_whole_surrogate_pair_is_an_ordinary_character(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    response = await _create_project(http, b"film \\ud83c\\udfac")

    assert response.status_code == 200
    assert response.json()["data"]["createProject"]["userErrors"] == []
    assert await _projects(gql) == 1


async def test_a_body_without_a_query_is_refused_with_a_code(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json={"variables": {}})

    _assert_refused(response, 400, "BAD_REQUEST", "No GraphQL query found in the request")


async def test_a_mutation_over_get_is_refused_with_a_code(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    mutation = 'mutation { createProject(input: {name: "x"}) { project { id } } }'

    response = await http.get("/graphql", params={"query": mutation})

    _assert_refused(response, 400, "BAD_REQUEST", "mutations are not allowed when using GET")
    assert await _projects(gql) == 0


async def test_an_unsupported_method_is_refused_with_a_code(http: httpx.AsyncClient) -> None:
    response = await http.put("/graphql", json={"query": "{ __typename }"})

    _assert_refused(
        response, 405, "METHOD_NOT_ALLOWED", "GraphQL only supports GET and POST requests."
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_subscription_over_http_is_refused_with_a_code(
    http: httpx.AsyncClient, method: str
) -> None:
    subscription = 'subscription { exportUpdated(id: "RXhwb3J0OjE") { kind } }'

    if method == "GET":
        response = await http.get("/graphql", params={"query": subscription})
    else:
        response = await http.post("/graphql", json={"query": subscription})

    # subscriptions run over the WebSocket; executed once, they could only fail
    _assert_refused(
        response, 400, "BAD_REQUEST", f"subscriptions are not allowed when using {method}"
    )
