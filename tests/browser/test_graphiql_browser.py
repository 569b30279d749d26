"""GraphiQL in Chromium, with the server as the only host it can reach: it loads, answers what is
typed in it, opens on the product's main flow, follows a generation over WebSocket, and runs no
file whose bytes are not those the page names."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from graphql import StringValueNode, parse, visit
from graphql.language import Visitor
from playwright.sync_api import expect

from storyframe.web.assets import ASSETS, REACT
from storyframe.web.tabs import DEFAULT_TABS, SIGN_UP
from tests.support.browser import Browser, GraphiQL
from tests.support.servers import Server

PASSWORD = "not in any address bar"


def _string_literals(document: str) -> list[str]:
    found: list[str] = []

    class Strings(Visitor):
        def enter_string_value(self, node: StringValueNode, *_: object) -> None:
            found.append(node.value)

    visit(parse(document), Strings())
    return found


def test_graphiql_answers_a_query_typed_in_its_editor(server: Server, chrome: Browser) -> None:
    graphiql = GraphiQL(chrome.page)
    graphiql.open(server.base_url)

    graphiql.new_tab()
    graphiql.set_query("{ __typename }")
    answer = graphiql.run()

    assert answer == {"data": {"__typename": "Query"}}
    # the document being edited is in the address bar, to share it
    shared = parse_qs(urlsplit(chrome.page.url).query)
    assert shared["q"] == ["{ __typename }"]
    assert chrome.network.outside == []


def test_graphiql_opens_on_the_main_flow_with_the_password_in_variables(
    server: Server, chrome: Browser
) -> None:
    graphiql = GraphiQL(chrome.page)
    graphiql.open(server.base_url)

    assert graphiql.tab_titles() == [
        "SignUp",
        "CreateProject",
        "GenerateFrameImages",
        "FollowGeneration",
    ]
    assert graphiql.tab_titles() == [tab.title for tab in DEFAULT_TABS]
    # the first tab signs up with variables: no literal in the document, which the address
    # bar shows; the password is in the variables, which it never does
    query = graphiql.query()
    assert query == SIGN_UP.query
    assert _string_literals(query) == []
    assert "$password" in query
    assert graphiql.variables() == SIGN_UP.variables
    graphiql.set_variables({"email": "ada@storyframe.test", "password": PASSWORD})
    answer = graphiql.run("SignUp")
    assert answer["data"]["signUp"]["userErrors"] == []
    assert answer["data"]["signUp"]["token"].startswith("sf_")
    assert PASSWORD not in chrome.page.url
    assert PASSWORD.replace(" ", "+") not in chrome.page.url
    # every tab is there with its document and variables
    for tab in DEFAULT_TABS[1:]:
        graphiql.select_tab(tab.title)
        assert graphiql.query() == tab.query
        assert graphiql.variables() == tab.variables
        assert graphiql.headers() == tab.headers


def test_graphiql_reaches_nothing_but_the_server(server: Server, chrome: Browser) -> None:
    graphiql = GraphiQL(chrome.page)
    graphiql.open(server.base_url)
    graphiql.new_tab()
    graphiql.set_query("query Viewer { viewer { email } }")
    assert graphiql.run() == {"data": {"viewer": None}}

    network = chrome.network
    assert network.outside == []
    assert all(url.startswith(f"{server.base_url}/") for url in network.reached), network.reached
    paths = {urlsplit(url).path for url in network.reached}
    assert paths >= {"/graphql"} | {asset.url for asset in ASSETS.values()}
    # nothing refused by the page's own policy, no script error, no integrity mismatch
    assert network.console_errors == []


def test_a_file_whose_bytes_are_not_those_the_page_names_is_not_run(
    server: Server, chrome: Browser
) -> None:
    changed = REACT.path.read_bytes() + b"\n// changed\n"
    chrome.page.route(
        f"**{REACT.url}",
        lambda route: route.fulfill(body=changed, content_type=REACT.media_type),
    )

    with chrome.page.expect_console_message(lambda m: "integrity" in m.text) as refused:
        chrome.page.goto(f"{server.base_url}/graphql")  # until every script has run, or not

    assert REACT.url in refused.value.text
    expect(chrome.page.locator("#graphiql")).to_have_text("Loading…")
    chrome.network.console_errors.clear()  # the refusal, and what could not run without React


def test_the_browser_refuses_and_records_a_request_to_another_host(
    server: Server, chrome: Browser
) -> None:
    chrome.page.goto(f"{server.base_url}/healthz")

    failed = chrome.page.evaluate(
        """() => fetch("http://storyframe.invalid/x").then(() => false, () => true)"""
    )

    assert failed is True
    assert chrome.network.outside == ["http://storyframe.invalid/x"]


def test_the_first_tabs_sign_up_generate_and_follow_a_generation_over_websocket(
    server: Server, chrome: Browser
) -> None:
    graphiql = GraphiQL(chrome.page)
    graphiql.open(server.base_url)
    graphiql.set_variables({"email": "flow@storyframe.test", "password": PASSWORD})
    token = graphiql.run("SignUp")["data"]["signUp"]["token"]
    headers = {"Authorization": f"Bearer {token}"}

    graphiql.select_tab("CreateProject")
    graphiql.set_headers(headers)
    variables = graphiql.variables()
    project = graphiql.run("CreateProject")["data"]["createProject"]["project"]
    graphiql.set_variables({**variables, "projectId": project["id"]})
    video = graphiql.run("CreateVideo")["data"]["createVideo"]["video"]
    graphiql.set_variables({**variables, "videoId": video["id"]})
    frame = graphiql.run("CreateFrame")["data"]["createFrame"]["frame"]

    graphiql.select_tab("GenerateFrameImages")
    graphiql.set_headers(headers)
    graphiql.set_variables({**graphiql.variables(), "frameId": frame["id"]})
    payload = graphiql.run("GenerateFrameImages")["data"]["generateFrameImages"]
    assert payload["userErrors"] == []

    graphiql.select_tab("FollowGeneration")
    graphiql.set_headers(headers)
    graphiql.set_variables({"generationId": payload["generation"]["id"]})
    graphiql.run()
    event = graphiql.answer_with('"SUCCEEDED"')["data"]["generationUpdated"]

    assert event["generation"]["id"] == payload["generation"]["id"]
    assert event["generation"]["completedCount"] == 2
    websocket = f"ws://127.0.0.1:{urlsplit(server.base_url).port}/graphql"
    assert websocket in chrome.network.reached
    assert chrome.network.outside == []
    assert chrome.network.console_errors == []
