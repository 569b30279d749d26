"""A real browser for the pages Storyframe serves: Debian's Chromium, driven by Playwright, that
reaches nothing but the server, and GraphiQL's page as a user works it.

Every request the page makes to a host other than the loopback one is refused and kept (in
`Network.outside`), HTTP and WebSocket alike, so a test can say none was even tried."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    WebSocketRoute,
    expect,
)
from playwright.sync_api import Route as HTTPRoute

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Bounds for a loaded machine, reached only when something is wrong: GraphiQL is ready, and
# answers, in well under a second on an idle one.
READY_MS = 60_000
ANSWER_MS = 60_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def chromium() -> Path:
    """Debian's Chromium; a test that needs it fails in CI without it, elsewhere is skipped."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI must run them")
        pytest.skip(message)
    return CHROMIUM


def artifacts() -> Path:
    """Where screenshots go: `STORYFRAME_TEST_ARTIFACTS`, or test-artifacts/ in the checkout."""
    directory = Path(os.environ.get("STORYFRAME_TEST_ARTIFACTS") or ARTIFACTS)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in LOOPBACK


@dataclass
class Network:
    """What the page asked for: every URL it reached, and those refused for leaving loopback."""

    reached: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def guard(self, context: BrowserContext) -> None:
        context.route("**/*", self._http)
        context.route_web_socket(re.compile(".*"), self._websocket)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def _http(self, route: HTTPRoute) -> None:
        url = route.request.url
        if is_loopback(url):
            self.reached.append(url)
            route.continue_()
        else:
            self.outside.append(url)
            route.abort("blockedbyclient")

    def _websocket(self, socket: WebSocketRoute) -> None:
        if is_loopback(socket.url):
            self.reached.append(socket.url)
            socket.connect_to_server()
        else:
            self.outside.append(socket.url)
            socket.close(code=1008, reason="only the server may be reached")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


@dataclass
class Browser:
    page: Page
    network: Network


@contextmanager
def browser(playwright: Playwright, profile: Path) -> Iterator[Browser]:
    """Chromium on an empty profile, its one page guarded and watched."""
    profile.mkdir(parents=True, exist_ok=False)
    context = playwright.chromium.launch_persistent_context(
        profile,
        executable_path=chromium(),
        args=list(CHROMIUM_ARGS),
        headless=True,
        viewport={"width": 1400, "height": 900},
    )
    context.set_default_timeout(ANSWER_MS)
    try:
        network = Network()
        network.guard(context)
        page = context.pages[0] if context.pages else context.new_page()
        network.watch(page)
        yield Browser(page, network)
    finally:
        context.close()


# --- GraphiQL, as a user works it -------------------------------------------------------------

QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
# The variables and headers editors share a pane; the one shown is not `hidden`.
TOOL_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
RESPONSE = ".graphiql-response .CodeMirror"
TAB = ".graphiql-tab-button"
SELECTED_TAB = ".graphiql-tab[aria-selected='true'] .graphiql-tab-button"
_VALUE = "(selector) => document.querySelector(selector).CodeMirror.getValue()"
_SET_VALUE = "([selector, text]) => document.querySelector(selector).CodeMirror.setValue(text)"
# GraphiQL takes an edit of the document a moment later (reading its operations, naming the
# tab), then calls the page, which puts the document in the address bar.
_SETTLED = """(selector) => {
    const shared = new URLSearchParams(window.location.search).get("q") || "";
    return shared === document.querySelector(selector).CodeMirror.getValue();
}"""
_ANSWERED = """([selector, text]) => {
    const editor = document.querySelector(selector);
    return editor !== null && editor.CodeMirror.getValue().includes(text);
}"""


class GraphiQL:
    """The GraphiQL page: its tabs, its editors (CodeMirror, set as a paste would) and the run
    button."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, base_url: str) -> None:
        self.page.goto(f"{base_url}/graphql")
        self.page.wait_for_selector(QUERY_EDITOR, timeout=READY_MS)
        self._settle()

    def tab_titles(self) -> list[str]:
        return [title.strip() for title in self.page.locator(TAB).all_inner_texts()]

    def select_tab(self, title: str) -> None:
        exactly = re.compile(f"^{re.escape(title)}$")
        self.page.locator(TAB).filter(has_text=exactly).click()
        expect(self.page.locator(SELECTED_TAB)).to_have_text(exactly, timeout=ANSWER_MS)
        self._settle()

    def new_tab(self) -> None:
        self.page.get_by_role("button", name="Add tab", exact=True).click()
        self._settle()

    def query(self) -> str:
        return str(self.page.evaluate(_VALUE, QUERY_EDITOR))

    def set_query(self, text: str) -> None:
        self.page.evaluate(_SET_VALUE, [QUERY_EDITOR, text])
        self._settle()

    def variables(self) -> dict[str, Any]:
        return self._tool("Variables")

    def set_variables(self, values: dict[str, Any]) -> None:
        self._set_tool("Variables", values)

    def headers(self) -> dict[str, Any]:
        return self._tool("Headers")

    def set_headers(self, values: dict[str, Any]) -> None:
        self._set_tool("Headers", values)

    def run(self, operation: str | None = None) -> dict[str, Any]:
        """Press the run button (and pick `operation` when the document has several); the
        answer once the response pane shows one."""
        self.page.evaluate(_SET_VALUE, [RESPONSE, ""])
        self.page.locator(".graphiql-execute-button").click()
        if operation is not None:
            self.page.get_by_role("menuitem", name=operation, exact=True).click()
        return self.answer_with("{")

    def answer_with(self, text: str) -> dict[str, Any]:
        """The response pane's JSON, once it holds `text`."""
        self.page.wait_for_function(_ANSWERED, arg=[RESPONSE, text], timeout=ANSWER_MS)
        answer: dict[str, Any] = json.loads(self.page.evaluate(_VALUE, RESPONSE))
        return answer

    def _tool(self, name: str) -> dict[str, Any]:
        self._show(name)
        text = str(self.page.evaluate(_VALUE, TOOL_EDITOR))
        values: dict[str, Any] = json.loads(text) if text.strip() else {}
        return values

    def _set_tool(self, name: str, values: dict[str, Any]) -> None:
        self._show(name)
        self.page.evaluate(_SET_VALUE, [TOOL_EDITOR, json.dumps(values, indent=2)])

    def _settle(self) -> None:
        """Wait until GraphiQL has taken the document in the editor as the tab's."""
        self.page.wait_for_function(_SETTLED, arg=QUERY_EDITOR, timeout=ANSWER_MS)

    def _show(self, tool: str) -> None:
        """Show the variables or headers editor, as its button below the query does."""
        self.page.locator(f".graphiql-editor-tools button[data-name={tool.lower()}]").click()
