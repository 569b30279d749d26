"""What a document goes through before it runs: each check linear in the document, the cheap
ones first, each refusal with its own code, and the work of identical documents done once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

import storyframe.schema.limits
from storyframe.api_schema import build_schema, document_checks
from storyframe.schema.cost import CostWalk
from storyframe.services.accounts import Session as AccountSession
from storyframe.services.container import Services
from storyframe.settings import Settings
from tests.support.apps import app_with
from tests.support.clients import GraphQLClient, client_of
from tests.support.scenes import a_full_project
from tests.support.seeds import Seeds
from tests.support.servers import running_server

WATCHDOG_SECONDS = 120
"""Only a check that walks every spread again would come near this: the documents below
would take it years."""


DEFAULT_COST = Settings.model_fields["max_query_cost"].default


@pytest.fixture
async def anonymous_gql(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A client without a token, of an app with the default cost limit."""
    async with app_with(settings, max_query_cost=DEFAULT_COST) as app, client_of(app) as gql:
        yield gql


@pytest.fixture
async def gql(settings: Settings, owner: AccountSession) -> AsyncIterator[GraphQLClient]:
    """The owner's client, of an app with the default cost limit."""
    async with (
        app_with(settings, max_query_cost=DEFAULT_COST) as app,
        client_of(app, owner.token) as gql,
    ):
        yield gql


def fan_out(levels: int) -> str:
    """A small document: each of `levels` fragments spreads the previous one twice, so the
    last stands for 2**(levels - 1) selections of `__typename`."""
    fragments = [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    return "\n".join(
        [f"query FanOut {{ ...F{levels - 1} }}", "fragment F0 on Query { __typename }", *fragments]
    )


def relation_cycle(levels: int, aliases: int = 3) -> str:
    """`video { frames { video { frames { … } } } }`, `levels` deep, asked `aliases` times."""
    inner = "id"
    for _ in range(levels):
        inner = f"frames {{ video {{ {inner} }} }}"
    asked = " ".join(f"a{i}: video(id: $id) {{ {inner} }}" for i in range(aliases))
    return f"query Cycle($id: ID!) {{ {asked} }}"


async def _answer(gql: GraphQLClient, document: str, **variables: Any) -> dict[str, Any]:
    return await asyncio.wait_for(gql.execute(document, variables or None), WATCHDOG_SECONDS)


def _error(body: dict[str, Any]) -> dict[str, Any]:
    assert body["data"] is None
    (error,) = body["errors"]
    assert isinstance(error, dict)
    return error


# --- before authentication, and linear in the document ----------------------------------------


async def test_a_fragment_fan_out_without_a_token_is_refused_by_its_cost(
    anonymous_gql: GraphQLClient,
) -> None:
    # given: 2**19 selections, under 1 KB
    document = fan_out(20)
    assert len(document) < 1024

    # when
    error = _error(await _answer(anonymous_gql, document))

    # then
    assert error["extensions"] == {
        "code": "MAX_COST_EXCEEDED",
        "cost": 2**19,
        "limit": DEFAULT_COST,
    }
    assert f"up to {2**19} fields; the limit is {DEFAULT_COST}" in error["message"]


def test_the_server_answers_others_while_it_refuses_a_fan_out(tmp_path: Path) -> None:
    # given: the real server, and a fan-out of 2**59 selections sent without a token
    with running_server(tmp_path / "data", tmp_path / "server.log") as (_, client):

        def refuse() -> httpx.Response:
            return client.post("/graphql", json={"query": fan_out(60)}, timeout=WATCHDOG_SECONDS)

        # when
        with ThreadPoolExecutor(2) as pool:
            refused = pool.submit(refuse)
            health = pool.submit(client.get, "/healthz", timeout=WATCHDOG_SECONDS)
            refusal, healthy = refused.result(), health.result()

    # then
    assert healthy.json() == {"status": "ok"}
    assert refusal.json()["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


async def test_a_fan_out_within_the_cost_runs(anonymous_gql: GraphQLClient) -> None:
    # when: 2**10 selections of one field, merged into one
    data = await anonymous_gql.data(fan_out(11))

    # then
    assert data == {"__typename": "Query"}


async def test_depth_counts_through_fragments(settings: Settings, owner: AccountSession) -> None:
    # given: each fragment adds a level
    document = """
    query Deep { projects { ...P } }
    fragment P on ProjectConnection { nodes { videos { ...V } } }
    fragment V on VideoConnection { nodes { frames { id } } }
    """
    async with app_with(settings, max_query_depth=4) as app, client_of(app, owner.token) as gql:
        # when
        error = _error(await gql.execute(document))

    # then
    assert error["extensions"] == {"code": "MAX_DEPTH_EXCEEDED", "depth": 5, "limit": 4}


async def test_aliases_count_every_use_of_a_fragment(
    settings: Settings, owner: AccountSession
) -> None:
    # given: two aliases in a fragment spread three times
    document = """
    query { ...A x: __typename ... on Query { ...A } ...A }
    fragment A on Query { a: __typename b: __typename }
    """
    async with app_with(settings, max_aliases=6) as app, client_of(app, owner.token) as gql:
        # when
        error = _error(await gql.execute(document))

    # then
    assert error["extensions"] == {"code": "MAX_ALIASES_EXCEEDED", "aliases": 7, "limit": 6}


# --- the cost of lists ------------------------------------------------------------------------


@pytest.fixture
async def video_id(services: Services, seeds: Seeds) -> str:
    ids = await a_full_project(services, seeds, "Cyclic")
    return ids.video


async def test_a_relation_cycle_is_refused_with_its_cost_and_the_limit(
    gql: GraphQLClient, video_id: str
) -> None:
    # when
    error = _error(await _answer(gql, relation_cycle(5), id=video_id))

    # then: each level asks up to 500 frames, each frame its video and what is below it
    below = 1  # the innermost `id`
    for _ in range(5):
        below = 500 * (2 + below)
    cost = 3 * (1 + below)  # three aliases of `video` at the root
    assert error["extensions"] == {"code": "MAX_COST_EXCEEDED", "cost": cost, "limit": DEFAULT_COST}
    assert error["message"].startswith(f"the query may resolve up to {cost} fields")


async def test_the_stored_bound_on_frames_sets_their_cost(
    settings: Settings, owner: AccountSession, video_id: str
) -> None:
    # given: at most 10 frames a video, so each of three aliases costs 1 + 10 * (2 + 10 * 3),
    # 963 in all
    document = relation_cycle(2)
    async with (
        app_with(settings, max_frames_per_video=10, max_query_cost=963) as at_limit,
        app_with(settings, max_frames_per_video=10, max_query_cost=962) as under,
        client_of(at_limit, owner.token) as allowed,
        client_of(under, owner.token) as refused,
    ):
        # when
        data = await allowed.data(document, {"id": video_id})
        error = _error(await refused.execute(document, {"id": video_id}))

    # then
    assert set(data) == {"a0", "a1", "a2"}
    assert error["extensions"] == {"code": "MAX_COST_EXCEEDED", "cost": 963, "limit": 962}


# `projects` and its `totalCount`, then each project of the page with its `id` and `name`.
@pytest.mark.parametrize(("first", "cost"), [(None, 2 + 20 * 3), (5, 2 + 5 * 3)])
async def test_a_page_counts_its_first_from_the_variables(
    settings: Settings, owner: AccountSession, first: int | None, cost: int
) -> None:
    # given: projects, its totalCount, and an id and a name per project of the page
    document = "query($n: Int) { projects(first: $n) { totalCount nodes { id name } } }"
    async with (
        app_with(settings, max_query_cost=cost) as at_limit,
        app_with(settings, max_query_cost=cost - 1) as under,
        client_of(at_limit, owner.token) as allowed,
        client_of(under, owner.token) as refused,
    ):
        # when
        data = await allowed.data(document, {"n": first})
        error = _error(await refused.execute(document, {"n": first}))

    # then
    assert data == {"projects": {"totalCount": 0, "nodes": []}}
    assert error["extensions"] == {"code": "MAX_COST_EXCEEDED", "cost": cost, "limit": cost - 1}


async def test_nodes_count_the_ids_asked_for(settings: Settings, owner: AccountSession) -> None:
    # given: `nodes`, and `id` of each of four
    document = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    ids = ["UHJvamVjdDox"] * 4
    async with app_with(settings, max_query_cost=8) as app, client_of(app, owner.token) as gql:
        # when
        four = await gql.data(document, {"ids": ids})
        five = _error(await gql.execute(document, {"ids": [*ids, ids[0]]}))

    # then
    assert four == {"nodes": [None] * 4}
    assert five["extensions"]["cost"] == 10


# --- what clients send every day ----------------------------------------------------------------


async def test_graphiqls_introspection_is_answered(anonymous_gql: GraphQLClient) -> None:
    # when
    data = await anonymous_gql.data(get_introspection_query(descriptions=True))

    # then
    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_introspection_lists_nested_past_a_client_s_needs_are_refused(
    anonymous_gql: GraphQLClient,
) -> None:
    # given: fields of the types of fields of the types of fields of every type
    document = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"

    # when
    error = _error(await anonymous_gql.execute(document))

    # then
    assert error["message"] == "Maximum introspection depth exceeded"
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}


# --- in order, and once -----------------------------------------------------------------------


async def test_a_document_over_the_token_limit_is_refused_before_it_is_read(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a fan-out that would fail validation too (F0 is on the wrong type)
    document = fan_out(30).replace("fragment F0 on Query", "fragment F0 on Nothing")
    validated: list[object] = []

    def counting_validate(*args: object) -> list[object]:
        validated.append(args)
        return []

    monkeypatch.setattr(storyframe.schema.limits, "validate", counting_validate)
    async with app_with(settings, max_tokens=100) as app, client_of(app) as gql:
        # when
        error = _error(await gql.execute(document))

    # then
    assert error["extensions"] == {"code": "MAX_TOKENS_EXCEEDED", "limit": 100}
    assert validated == []


async def test_identical_documents_are_parsed_and_validated_once(
    settings: Settings, owner: AccountSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    validations: list[str] = []
    parses: list[str] = []
    validate = storyframe.schema.limits.validate
    parse = storyframe.schema.limits.parse

    def counting_validate(*args: Any) -> Any:
        validations.append("validate")
        return validate(*args)

    def counting_parse(source: str, **options: Any) -> Any:
        parses.append(source)
        return parse(source, **options)

    monkeypatch.setattr(storyframe.schema.limits, "validate", counting_validate)
    monkeypatch.setattr(storyframe.schema.limits, "parse", counting_parse)
    document = "query($n: Int) { projects(first: $n) { totalCount } }"
    async with app_with(settings) as app, client_of(app, owner.token) as gql:
        # when
        answers = [await gql.data(document, {"n": n}) for n in range(50)]
        other = await gql.data("{ __typename }")

    # then
    assert answers == [{"projects": {"totalCount": 0}}] * 50
    assert other == {"__typename": "Query"}
    assert parses == [document, "{ __typename }"]
    assert validations == ["validate", "validate"]


async def test_a_cost_is_walked_once_per_document_without_variables_and_per_request_with_them(
    settings: Settings, owner: AccountSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    walks: list[str] = []

    class CountingWalk(CostWalk):
        def __init__(self, *args: Any) -> None:
            walks.append("walk")
            super().__init__(*args)

    monkeypatch.setattr(storyframe.schema.limits, "CostWalk", CountingWalk)
    fixed = "{ projects(first: 5) { nodes { id } } }"
    variable = "query($n: Int) { projects(first: $n) { nodes { id } } }"
    async with app_with(settings, max_query_cost=50) as app, client_of(app, owner.token) as gql:
        # when
        for _ in range(10):
            await gql.data(fixed)
        fixed_walks = len(walks)
        small = [await gql.execute(variable, {"n": n}) for n in (1, 2, 3)]
        large = await gql.execute(variable, {"n": 100})

    # then: the fixed one once; each request with variables anew, so a large page is refused
    assert fixed_walks == 1
    assert len(walks) == 5
    assert all("errors" not in body for body in small)
    assert [e["extensions"]["code"] for e in large["errors"]] == ["MAX_COST_EXCEEDED"]


def test_every_list_of_the_schema_has_a_bound(settings: Settings) -> None:
    # given
    schema = build_schema(settings)

    # when
    unbounded = document_checks(settings)(schema._schema).unbounded_lists()

    # then
    assert unbounded == []


# --- codes for every refusal ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "variables", "code"),
    [
        ("{ __typename ", None, "GRAPHQL_PARSE_FAILED"),
        ("query { projects(first: 1) { nope } }", None, "GRAPHQL_VALIDATION_FAILED"),
        ('query { projects(first: "x") { totalCount } }', None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int) { projects(first: $n) { totalCount } }", {"n": "x"}, "BAD_USER_INPUT"),
        ("query($n: Int!) { projects(first: $n) { totalCount } }", {}, "BAD_USER_INPUT"),
        ("query($i: ID!) { node(id: $i) { id } }", {"i": {"a": 1}}, "BAD_USER_INPUT"),
    ],
    ids=["parse", "unknown-field", "wrong-literal", "variable-type", "variable-missing", "object"],
)
async def test_every_refused_document_carries_a_code(
    gql: GraphQLClient, document: str, variables: dict[str, Any] | None, code: str
) -> None:
    # when
    body = await gql.execute(document, variables)

    # then
    assert body["data"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == [code]
