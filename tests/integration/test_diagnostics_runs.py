"""`runDiagnostics` through the API, on both databases: a run of either suite is a job whose
checks are written as they finish; with placeholders every check passes and nothing costs money;
the API suite leaves no scratch project behind; a user has one run at a time, a few an hour; and
another user's run is not found."""

from __future__ import annotations

import asyncio
from typing import Any

from storyframe.settings import Settings
from tests.support.apps import owned_app, settings_with
from tests.support.clients import GraphQLClient, http_client, sign_up
from tests.support.fake_openai import fake_openai_fixture  # noqa: F401
from tests.support.generating import (
    OpenAIStack,
    openai_stack_fixture,  # noqa: F401
    start_fixture,  # noqa: F401
)
from tests.support.polling import until

RUN = """
mutation($suite: DiagnosticsSuite!, $confirm: Boolean!) {
  runDiagnostics(input: {suite: $suite, confirmCost: $confirm}) {
    run { id status suite }
    userErrors { field message code }
  }
}
"""
RUN_NODE = """
query($id: ID!) {
  node(id: $id) {
    ... on DiagnosticsRun {
      id suite status placeholder costConfirmed estimatedCostUsd spentUsd
      checks {
        name title status durationMs detail warning skippedReason request response
        inputImages { url width height } outputImages { url width height contentType }
        errorCode error
      }
    }
  }
}
"""
PROJECTS = "query { projects { totalCount } }"
RUN_SECONDS = 120.0


async def _start(gql: GraphQLClient, suite: str, confirm: bool = False) -> dict[str, Any]:
    data = await gql.data(RUN, {"suite": suite, "confirm": confirm})
    payload: dict[str, Any] = data["runDiagnostics"]
    return payload


async def _finished(gql: GraphQLClient, run_id: str) -> dict[str, Any]:
    async with asyncio.timeout(RUN_SECONDS):
        while True:
            node: dict[str, Any] = (await gql.data(RUN_NODE, {"id": run_id}))["node"]
            if node["status"] not in ("QUEUED", "RUNNING"):
                return node
            await asyncio.sleep(0.05)


async def test_the_api_suite_passes_with_placeholders_and_leaves_nothing(
    settings: Settings,
) -> None:
    async with owned_app(settings) as owned:
        started = await _start(owned.gql, "API")
        assert started["userErrors"] == []
        assert started["run"]["status"] == "QUEUED"
        run = await _finished(owned.gql, started["run"]["id"])
        assert run["status"] == "PASSED", run["checks"]
        assert run["placeholder"] is True
        assert run["estimatedCostUsd"] == 0
        names = [check["name"] for check in run["checks"]]
        assert names[0] == "api.configuration"
        assert "api.full_flow" in names
        assert {check["status"] for check in run["checks"]} == {"PASSED"}
        flow = next(check for check in run["checks"] if check["name"] == "api.full_flow")
        assert flow["durationMs"] > 0
        generated = next(check for check in run["checks"] if check["name"] == "api.generation")
        (image,) = generated["outputImages"]
        assert image["url"].startswith("data:image/jpeg;base64,")
        assert image["width"] > 0
        # the scratch project is gone
        assert (await owned.gql.data(PROJECTS))["projects"]["totalCount"] == 0


async def test_the_openai_suite_runs_against_placeholders_without_a_key(
    settings: Settings,
) -> None:
    async with owned_app(settings) as owned:
        started = await _start(owned.gql, "OPENAI")
        run = await _finished(owned.gql, started["run"]["id"])
        assert run["status"] == "PASSED", run["checks"]
        assert "placeholder" in (run["checks"][0]["detail"] or "")
        image = next(check for check in run["checks"] if check["name"] == "openai.image")
        assert image["outputImages"]
        assert image["request"] is not None


async def test_a_few_runs_an_hour(settings: Settings) -> None:
    limited = settings_with(settings, diagnostics_runs_per_hour=2)
    async with owned_app(limited) as owned:
        for _ in range(2):
            payload = await _start(owned.gql, "OPENAI")
            assert payload["userErrors"] == []
            await _finished(owned.gql, payload["run"]["id"])
        refused = await _start(owned.gql, "OPENAI")
        assert refused["run"] is None
        assert [e["code"] for e in refused["userErrors"]] == ["RATE_LIMITED"]


async def test_another_users_run_is_not_found(settings: Settings) -> None:
    async with owned_app(settings) as owned:
        started = await _start(owned.gql, "OPENAI")
        await _finished(owned.gql, started["run"]["id"])
        token = await sign_up(owned.gql, "other@storyframe.test", "seven mossy kettles hum at noon")
        async with http_client(owned.app, token) as http:
            other = GraphQLClient(http)
            assert (await other.data(RUN_NODE, {"id": started["run"]["id"]}))["node"] is None


async def test_one_run_at_a_time_and_paid_checks_need_the_cost_confirmed(
    stack: OpenAIStack,
) -> None:
    # given: with an OpenAI key, a run whose checks may cost money, held at its image call
    stack.fake.pause(1)
    started = await _start(stack.gql, "OPENAI", confirm=True)
    assert started["userErrors"] == []
    await until(lambda: len(stack.fake.requests_to("images")) == 1)
    # when another is asked for meanwhile, it is refused, and nothing is queued
    second = await _start(stack.gql, "OPENAI", confirm=True)
    assert second["run"] is None
    assert [e["code"] for e in second["userErrors"]] == ["LIMIT_REACHED"]
    stack.fake.resume()
    run = await _finished(stack.gql, started["run"]["id"])
    assert run["costConfirmed"] is True
    assert run["estimatedCostUsd"] > 0
    assert run["placeholder"] is False
    image = next(check for check in run["checks"] if check["name"] == "openai.image")
    assert image["status"] == "PASSED"
    assert stack.fake.api_key not in str(run)  # redacted wherever it would appear
    # then without confirming the cost, the checks that cost money are skipped, saying so
    unconfirmed = await _start(stack.gql, "OPENAI")
    run = await _finished(stack.gql, unconfirmed["run"]["id"])
    image = next(check for check in run["checks"] if check["name"] == "openai.image")
    assert image["status"] == "SKIPPED"
    assert "confirmCost" in image["skippedReason"]
    assert run["spentUsd"] == 0
