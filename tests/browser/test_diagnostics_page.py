"""The diagnostics page in Chromium, with the server as the only host it can reach: a user logs in
(or pastes a token), runs each suite and sees every check's result, images and JSON as the run
goes; the token stays in the tab, a reload shows the run again, and checks that cost money wait
for the cost to be confirmed.

Two servers: the browser tests' own, with no OpenAI key (placeholders: every check passes and
nothing costs money), and one whose OpenAI is a fake on loopback, which holds its answers for as
long as a test needs a run to stay under way."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from storyframe.services.diagnostics import Suite, plan
from tests.support.browser import ANSWER_MS, Browser, artifacts
from tests.support.diagnostics_page import DiagnosticsPage
from tests.support.documents import LOG_IN, SIGN_UP
from tests.support.fake_openai import DEFAULT_API_KEY, FakeOpenAI
from tests.support.servers import Server, graphql, running_server

PASSWORD = "a long and unusual phrase"
PLACEHOLDERS = "no OpenAI key: placeholder images, nothing costs money"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "diagnostics.png"
"""The README's picture of the page, written when STORYFRAME_UPDATE_SCREENSHOT=1."""
IMAGE_CHECKS = {
    Suite.OPENAI: {"openai.image", "openai.edit"},
    Suite.API: {"api.generation", "api.reference_generation"},
}
LABELS = {Suite.OPENAI: "OpenAI", Suite.API: "API"}
PAID_CHECKS = ["openai.text", "openai.image", "openai.vision", "openai.edit"]
VIEWER = "query Viewer { viewer { email } }"
RUN = """query Run($id: ID!) {
  node(id: $id) { ... on DiagnosticsRun { status estimatedCostUsd spentUsd } } }"""


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, FakeOpenAI]]:
    """`storyframe serve` with an OpenAI key, its OpenAI the fake."""
    directory = tmp_path_factory.mktemp("keyed")
    with (
        FakeOpenAI() as fake,
        running_server(
            directory / "data",
            directory / "server.log",
            OPENAI_API_KEY=DEFAULT_API_KEY,
            OPENAI_BASE_URL=fake.base_url,
        ) as (server, _),
    ):
        yield server, fake


def api(server: Server, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=server.base_url, timeout=10.0, headers=headers) as client:
        return graphql(client, query, variables)


def signed_up(server: Server, email: str) -> str:
    variables = {"input": {"email": email, "password": PASSWORD}}
    payload = api(server, SIGN_UP, variables)["signUp"]
    assert payload["userErrors"] == []
    return str(payload["token"])


def names(suite: Suite) -> list[str]:
    return [name for name, _ in plan(suite)]


def assert_only_the_server_was_reached(chrome: Browser, server: Server) -> None:
    port = urlsplit(server.base_url).port
    assert f"ws://127.0.0.1:{port}/graphql" in chrome.network.reached
    assert chrome.network.outside == []
    assert chrome.network.console_errors == []


def test_both_suites_run_in_the_page_and_every_check_passes_with_placeholders(
    server: Server, chrome: Browser, request: pytest.FixtureRequest
) -> None:
    email = "both-suites@storyframe.test"
    signed_up(server, email)
    page = DiagnosticsPage(chrome.page)
    page.open(server.base_url)
    page.log_in(email, PASSWORD)

    page.expect_logged_in_as(email)
    expect(page.cost_note).to_contain_text(PLACEHOLDERS)
    token = page.session_token()
    assert token is not None
    assert token.startswith("sf_")
    assert chrome.page.url == f"{server.base_url}/diagnostics"
    for suite in (Suite.OPENAI, Suite.API):
        page.run(suite.value)

        assert page.wait_until_finished() == "PASSED"
        expect(page.status).to_contain_text(f"PASSED · {LABELS[suite]} suite · 5 passed")
        rows = page.rows()
        assert [(row.name, row.title) for row in rows] == plan(suite)
        for row in rows:
            assert row.status == "PASSED", row
            assert row.duration is not None, row
            assert row.duration.endswith(("ms", " s")), row
            assert row.facts["Detail"], row
            assert "Response" in row.json, row
        assert {row.name for row in rows if row.output_images} >= IMAGE_CHECKS[suite]
        widths = [width for row in rows for width in (*row.input_images, *row.output_images)]
        assert widths
        assert all(width > 0 for width in widths)
        spent = f"Spent $0.0000, of an estimated $0.0000 ({PLACEHOLDERS})."
        expect(page.total).to_have_text(spent)
        shot = artifacts() / f"{request.node.name}-{suite.value.lower()}.png"
        chrome.page.screenshot(path=shot, full_page=True)

    # what a check sent and got is there, pretty-printed, once opened
    configuration = page.row("api.configuration")
    configuration.get_by_text("Response", exact=True).click()
    expect(configuration.locator("details pre")).to_be_visible()
    expect(configuration.locator("details pre")).to_contain_text('  "databaseDialect": "sqlite"')
    if os.environ.get("STORYFRAME_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        chrome.page.screenshot(path=SCREENSHOT, full_page=True)
    assert_only_the_server_was_reached(chrome, server)


def test_a_wrong_password_shows_the_servers_message(server: Server, chrome: Browser) -> None:
    email = "wrong-password@storyframe.test"
    signed_up(server, email)
    variables = {"input": {"email": email, "password": "not the password at all"}}
    (refused,) = api(server, LOG_IN, variables)["logIn"]["userErrors"]
    assert refused["code"] == "INVALID_CREDENTIALS"
    page = DiagnosticsPage(chrome.page)
    page.open(server.base_url)

    page.log_in(email, "not the password at all")

    expect(page.login_error).to_have_text(
        f"{refused['message']} (INVALID_CREDENTIALS)", timeout=ANSWER_MS
    )
    expect(chrome.page.locator("#signed-in")).to_be_hidden()
    expect(page.run_button).to_be_disabled()
    assert page.session_token() is None
    assert chrome.network.outside == []
    assert chrome.network.console_errors == []


def test_a_token_that_is_not_valid_is_refused(server: Server, chrome: Browser) -> None:
    page = DiagnosticsPage(chrome.page)
    page.open(server.base_url)

    page.paste_token("sf_not-a-token-of-anyone")

    expect(page.login_error).to_contain_text("not valid", timeout=ANSWER_MS)
    expect(chrome.page.locator("#signed-in")).to_be_hidden()
    expect(page.run_button).to_be_disabled()
    assert page.session_token() is None
    assert chrome.network.outside == []
    assert chrome.network.console_errors == []


def test_a_pasted_token_stays_in_the_tab_a_reload_shows_the_run_and_log_out_forgets_it(
    server: Server, chrome: Browser
) -> None:
    email = "pasted-token@storyframe.test"
    token = signed_up(server, email)
    page = DiagnosticsPage(chrome.page)
    page.open(server.base_url)
    page.paste_token(token)
    page.expect_logged_in_as(email)
    page.run("OPENAI")
    assert page.wait_until_finished() == "PASSED"
    shown = page.rows()

    chrome.page.reload()

    page.expect_logged_in_as(email)
    assert page.wait_until_finished() == "PASSED"
    assert page.rows() == shown
    assert page.session_token() == token
    assert token not in chrome.page.url
    assert page.local_storage_length() == 0

    page.log_out()

    assert page.session_token() is None
    expect(chrome.page.locator("#checks > li")).to_have_count(0)
    expect(page.status).to_have_text("No run yet.")
    # a pasted token is only forgotten by the page; one it logged in with is revoked
    assert api(server, VIEWER, {}, token)["viewer"] == {"email": email}
    page.log_in(email, PASSWORD)
    page.expect_logged_in_as(email)
    logged_in = page.session_token()
    assert logged_in is not None
    assert logged_in != token
    page.log_out()
    assert api(server, VIEWER, {}, logged_in)["viewer"] is None
    assert_only_the_server_was_reached(chrome, server)


def test_a_second_run_while_one_is_under_way_is_refused_with_limit_reached(
    keyed: tuple[Server, FakeOpenAI], chrome: Browser
) -> None:
    server, fake = keyed
    email = "second-run@storyframe.test"
    token = signed_up(server, email)
    page = DiagnosticsPage(chrome.page)
    page.open(server.base_url)
    page.log_in(email, PASSWORD)
    page.expect_logged_in_as(email)
    expect(page.cost_note).to_contain_text("not confirmed, the checks that cost money are skipped")
    other = DiagnosticsPage(chrome.page.context.new_page())
    fake.pause()  # the run's one free check, the models list, waits for OpenAI's answer
    try:
        page.run("OPENAI")

        # every check is listed at once, in order; the one held is still pending
        expect(page.row("openai.models").locator(".check-status")).to_have_text(
            "PENDING", timeout=ANSWER_MS
        )
        assert page.listed() == names(Suite.OPENAI)
        expect(page.run_button).to_be_disabled()
        expect(page.run_button).to_have_text("Running…")
        # another tab of the same user cannot start a second run meanwhile
        other.open(server.base_url)
        other.paste_token(token)
        other.expect_logged_in_as(email)
        other.run("API")
        expect(other.run_error).to_contain_text("(LIMIT_REACHED)", timeout=ANSWER_MS)
        expect(other.run_button).to_be_enabled()
        expect(other.status).to_have_text("No run yet.")
        other.page.screenshot(path=artifacts() / "second-run-refused.png", full_page=True)
        # a reload reads the run again and follows it from where it is
        chrome.page.reload()
        page.expect_logged_in_as(email)
        expect(page.row("openai.models").locator(".check-status")).to_have_text(
            "PENDING", timeout=ANSWER_MS
        )
        expect(page.status).to_contain_text(
            "RUNNING · OpenAI suite · 4 of 5 checks done", timeout=ANSWER_MS
        )
        expect(page.run_button).to_be_disabled()
    finally:
        fake.resume()

    assert page.wait_until_finished() == "PASSED"
    rows = page.rows()
    assert {row.name: row.status for row in rows} == {
        **dict.fromkeys(PAID_CHECKS, "SKIPPED"),
        "openai.models": "PASSED",
    }
    for row in rows[: len(PAID_CHECKS)]:
        assert row.facts["Skipped"].startswith("costs money:"), row
    expect(page.total).to_contain_text("cost not confirmed")
    assert_only_the_server_was_reached(chrome, server)


def test_with_a_key_the_estimate_is_shown_and_a_confirmed_run_spends_it(
    keyed: tuple[Server, FakeOpenAI], chrome: Browser
) -> None:
    server, _ = keyed
    email = "confirmed@storyframe.test"
    token = signed_up(server, email)
    page = DiagnosticsPage(chrome.page)
    page.open(server.base_url)
    page.paste_token(token)
    page.expect_logged_in_as(email)
    page.run("OPENAI")
    assert page.wait_until_finished() == "PASSED"
    unconfirmed = api(server, RUN, {"id": page.run_id()}, token)["node"]
    estimate = unconfirmed["estimatedCostUsd"]
    assert estimate > 0
    expect(page.cost_note).to_contain_text(f"OpenAI suite costs about ${estimate:.4f}")

    page.run("OPENAI", confirm_cost=True)

    assert page.wait_until_finished() == "PASSED"
    rows = page.rows()
    assert [row.status for row in rows] == ["PASSED"] * len(rows)
    assert {row.name for row in rows if row.output_images} == IMAGE_CHECKS[Suite.OPENAI]
    for row in rows[: len(PAID_CHECKS)]:
        assert row.facts["Cost"].startswith("$"), row
    confirmed = api(server, RUN, {"id": page.run_id()}, token)["node"]
    assert confirmed["spentUsd"] > 0
    spent = f"Spent ${confirmed['spentUsd']:.4f}, of an estimated ${estimate:.4f}."
    expect(page.total).to_have_text(spent)
    assert_only_the_server_was_reached(chrome, server)
