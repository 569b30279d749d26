"""Fixtures of the browser tests: the real server, and Debian's Chromium on an empty profile
that reaches nothing but that server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Playwright, sync_playwright

from tests.support.browser import Browser, artifacts, browser, chromium
from tests.support.servers import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`storyframe serve` on SQLite, with no CORS_ORIGINS: its own pages open WebSockets to it
    all the same."""
    directory = tmp_path_factory.mktemp("server")
    with running_server(directory / "data", directory / "server.log") as (server, _):
        yield server


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    chromium()  # fails in CI, or skips elsewhere, before starting Playwright's driver
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def chrome(
    playwright: Playwright, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Browser]:
    """Chromium on an empty profile; what its page shows at the end of the test is kept as a
    screenshot in the artifacts."""
    with browser(playwright, tmp_path / "profile") as opened:
        try:
            yield opened
        finally:
            shot = artifacts() / f"{request.node.name}.png"
            opened.page.screenshot(path=shot, full_page=True)
