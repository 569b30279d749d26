"""Automatic persisted queries, as Apollo's persisted-queries link speaks them: a document is sent
once with its SHA-256, then by the hash alone, over POST or GET."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import orjson
import pytest
from graphql import DocumentNode
from graphql.language.parser import Parser
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from storyframe.persisted import PersistedQueries, Refusal
from storyframe.settings import Settings
from tests.support.apps import app_with
from tests.support.clients import GraphQLClient, client_of
from tests.support.scenes import create_project

PROJECT_NAME = "query ProjectName($id: ID!) { project(id: $id) { name } }"
PROJECTS = "query Projects { projects(first: 10) { totalCount } }"
CREATE_PROJECT = """
mutation CreateProject($name: String!) {
  createProject(input: {name: $name}) { project { id } userErrors { code } }
}
"""
NOT_FOUND = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}
NOT_SUPPORTED = {
    "errors": [
        {
            "message": "PersistedQueryNotSupported",
            "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
        }
    ]
}


@pytest.fixture
def dialect() -> str:
    """Persisted queries live in the process, not in the database: one dialect is enough."""
    return "sqlite"


def sha256(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def extension(query: str, version: object = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256(query)}}


async def post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    send_query: bool = True,
) -> httpx.Response:
    """POST the operation with its hash; with the document too when `send_query`."""
    body: dict[str, Any] = {"variables": variables, "extensions": extension(query)}
    if send_query:
        body["query"] = query
    return await http.post("/graphql", json=body)


async def get(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    """GET the operation by its hash alone, as `useGETForHashedQueries` sends it."""
    params = {"extensions": orjson.dumps(extension(query)).decode()}
    if variables is not None:
        params["variables"] = orjson.dumps(variables).decode()
    return await http.get("/graphql", params=params)


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "private, no-cache, must-revalidate"
    assert response.json() == NOT_FOUND


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": code}


async def test_a_hash_alone_runs_the_document_registered_with_it(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    project_id = await create_project(gql, "Persisted")

    unknown = await post(http, PROJECT_NAME, {"id": project_id}, send_query=False)
    registered = await post(http, PROJECT_NAME, {"id": project_id})
    by_hash = await post(http, PROJECT_NAME, {"id": project_id}, send_query=False)

    assert_not_found(unknown)
    assert registered.status_code == 200
    assert registered.json() == {"data": {"project": {"name": "Persisted"}}}
    assert by_hash.status_code == 200
    assert by_hash.json() == {"data": {"project": {"name": "Persisted"}}}


async def test_a_hash_the_server_does_not_know_is_not_found(http: httpx.AsyncClient) -> None:
    response = await post(http, PROJECTS, send_query=False)

    assert_not_found(response)


async def test_a_document_that_does_not_match_its_hash_is_refused_and_not_kept(
    http: httpx.AsyncClient,
) -> None:
    body = {"query": PROJECTS, "extensions": extension("query Other { __typename }")}

    response = await http.post("/graphql", json=body)

    assert_refused(response, "PERSISTED_QUERY_HASH_MISMATCH")
    assert_not_found(await post(http, PROJECTS, send_query=False))
    assert_not_found(await post(http, "query Other { __typename }", send_query=False))


async def test_a_hash_in_capitals_names_the_same_document(http: httpx.AsyncClient) -> None:
    await post(http, PROJECTS)
    upper = {"persistedQuery": {"version": 1, "sha256Hash": sha256(PROJECTS).upper()}}

    response = await http.post("/graphql", json={"extensions": upper})

    assert response.json() == {"data": {"projects": {"totalCount": 0}}}


@pytest.mark.parametrize("version", [2, 0, "1", True, None])
async def test_an_unsupported_version_is_refused_with_a_code(
    http: httpx.AsyncClient, version: object
) -> None:
    body = {"query": PROJECTS, "extensions": extension(PROJECTS, version)}

    response = await http.post("/graphql", json=body)

    assert_refused(response, "PERSISTED_QUERY_VERSION_NOT_SUPPORTED")
    assert_not_found(await post(http, PROJECTS, send_query=False))


@pytest.mark.parametrize(
    "persisted",
    [
        pytest.param("abc", id="not-an-object"),
        pytest.param({"version": 1}, id="no-hash"),
        pytest.param({"version": 1, "sha256Hash": "abc"}, id="short-hash"),
        pytest.param({"version": 1, "sha256Hash": 12}, id="number"),
    ],
)
async def test_a_malformed_persisted_query_is_refused_with_a_code(
    http: httpx.AsyncClient, persisted: object
) -> None:
    body = {"query": PROJECTS, "extensions": {"persistedQuery": persisted}}

    response = await http.post("/graphql", json=body)

    assert_refused(response, "BAD_REQUEST")


async def test_a_document_that_fails_validation_is_answered_but_not_kept(
    http: httpx.AsyncClient,
) -> None:
    invalid = "query Invalid { projects(first: 10) { noSuchField } }"

    response = await post(http, invalid)

    assert response.status_code == 200
    assert response.json()["errors"][0]["message"].startswith("Cannot query field 'noSuchField'")
    assert_not_found(await post(http, invalid, send_query=False))


async def test_the_least_recently_used_document_makes_room_for_a_new_one(
    settings: Settings,
) -> None:
    first, second, third = (f"query Q{n} {{ __typename }}" for n in (1, 2, 3))
    async with app_with(settings, persisted_queries=2) as app, client_of(app) as gql:
        http = gql.http
        await post(http, first)
        await post(http, second)
        used = await post(http, first, send_query=False)  # now the second is the oldest
        await post(http, third)

        assert used.json() == {"data": {"__typename": "Query"}}
        assert_not_found(await post(http, second, send_query=False))
        for kept in (first, third):
            assert (await post(http, kept, send_query=False)).json() == used.json()


async def test_a_cache_of_size_zero_turns_persisted_queries_off(settings: Settings) -> None:
    query = "query Off { __typename }"
    async with app_with(settings, persisted_queries=0) as app, client_of(app) as gql:
        with_document = await post(gql.http, query)
        hash_alone = await post(gql.http, query, send_query=False)
        plain = await gql.execute(query)

    for response in (with_document, hash_alone):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "private, no-cache, must-revalidate"
        assert response.json() == NOT_SUPPORTED
    assert plain == {"data": {"__typename": "Query"}}


async def test_a_query_runs_by_its_hash_over_get_with_its_variables(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    project_id = await create_project(gql, "Over GET")

    unknown = await get(http, PROJECT_NAME, {"id": project_id})
    await post(http, PROJECT_NAME, {"id": project_id})
    by_hash = await get(http, PROJECT_NAME, {"id": project_id})

    # httpx accepts */*, as browsers do: still JSON, not the GraphQL IDE
    assert_not_found(unknown)
    assert by_hash.status_code == 200
    assert by_hash.headers["content-type"] == "application/json"
    assert by_hash.json() == {"data": {"project": {"name": "Over GET"}}}


async def test_a_persisted_mutation_over_get_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    registered = await post(http, CREATE_PROJECT, {"name": "Once"})
    assert registered.json()["data"]["createProject"]["userErrors"] == []

    response = await get(http, CREATE_PROJECT, {"name": "Twice"})

    assert_refused(response, "BAD_REQUEST")
    assert response.json()["errors"][0]["message"] == "mutations are not allowed when using GET"
    assert (await gql.data(PROJECTS))["projects"]["totalCount"] == 1


async def test_a_mutation_sent_over_get_with_its_document_is_not_kept(
    http: httpx.AsyncClient,
) -> None:
    params = {
        "query": CREATE_PROJECT,
        "variables": orjson.dumps({"name": "Never"}).decode(),
        "extensions": orjson.dumps(extension(CREATE_PROJECT)).decode(),
    }

    response = await http.get("/graphql", params=params)

    assert_refused(response, "BAD_REQUEST")
    assert_not_found(await post(http, CREATE_PROJECT, {"name": "Never"}, send_query=False))


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """One entry for each document graphql-core parses, whoever asked it to."""
    parsed: list[None] = []
    parse_document = Parser.parse_document

    def counting(parser: Parser) -> DocumentNode:
        parsed.append(None)
        return parse_document(parser)

    monkeypatch.setattr(Parser, "parse_document", counting)
    return parsed


async def test_a_persisted_document_is_not_parsed_again(
    http: httpx.AsyncClient, parses: list[None]
) -> None:
    query = "query ParsedOnce { projects(first: 3) { totalCount } }"
    await post(http, query)
    parsed_to_register = len(parses)

    by_hash = await post(http, query, send_query=False)

    assert by_hash.json() == {"data": {"projects": {"totalCount": 0}}}
    assert parsed_to_register == 1
    assert len(parses) == parsed_to_register


async def test_the_documents_kept_are_bounded_by_their_size_too() -> None:
    # given: room for ten documents, but for only two of these by their size
    store = PersistedQueries(size=10, max_bytes=80)
    documents = [f"query Q{n} {{ __typename }}".ljust(40) for n in range(3)]
    too_large = "query Large { __typename }".ljust(81)

    async def run(request: GraphQLRequestData) -> ExecutionResult:
        return ExecutionResult(data={"__typename": "Query"}, errors=None)

    def request(query: str, send_query: bool = True) -> GraphQLRequestData:
        return GraphQLRequestData(
            query=query if send_query else None,
            variables=None,
            operation_name=None,
            extensions=extension(query),
        )

    # when
    for document in [*documents, too_large]:
        await store.execute(request(document), "POST", run)

    # then: the oldest made room, and a document larger than the whole store was not kept
    assert len(store) == 2
    with pytest.raises(Refusal) as oldest:
        await store.execute(request(documents[0], send_query=False), "POST", run)
    assert oldest.value.code == "PERSISTED_QUERY_NOT_FOUND"
    with pytest.raises(Refusal):
        await store.execute(request(too_large, send_query=False), "POST", run)
    for kept in documents[1:]:
        result = await store.execute(request(kept, send_query=False), "POST", run)
        assert result.data == {"__typename": "Query"}
