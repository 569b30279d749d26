"""The diagnostics page and its files over plain HTTP, from the real server: a policy that holds the
page to its own origin (its WebSockets included), files named by the hash of their bytes and
cached for good, nothing else served from their path, and the page there whatever the settings."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from storyframe.web.assets import CACHE_CONTROL, integrity_of
from storyframe.web.diagnostics import (
    SCRIPTS,
    STYLESHEET,
    content_security_policy,
    diagnostics_page,
)
from tests.support.apps import app_with, settings_for
from tests.support.clients import http_client
from tests.support.servers import Server

LOADED = re.compile(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"[^>]*?integrity="([^"]+)"')


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def page(client: httpx.Client) -> httpx.Response:
    response = client.get("/diagnostics")
    assert response.status_code == 200, response.text
    return response


def _policy(response: httpx.Response) -> dict[str, str]:
    directives = response.headers["content-security-policy"].split(";")
    return dict(directive.strip().split(" ", 1) for directive in directives)


def test_the_page_is_held_to_its_own_origin_its_websockets_included(
    server: Server, page: httpx.Response
) -> None:
    host = urlsplit(server.base_url).netloc

    assert _policy(page) == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": f"'self' ws://{host} wss://{host}",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_the_page_loads_its_own_files_each_with_its_hash_and_nothing_inline(
    page: httpx.Response,
) -> None:
    loaded = LOADED.findall(page.text)
    served = diagnostics_page()

    assert loaded == [
        (file.url, integrity_of(file.source.read_bytes()))
        for file in (served.stylesheet, *served.scripts)
    ]
    assert [file.source for file in served.scripts] == list(SCRIPTS)
    assert served.stylesheet.source == STYLESHEET
    # nothing named on another host, no script or style but those files, no handler attribute
    assert "://" not in page.text
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None
    assert "<style" not in page.text
    assert re.search(r"\s(?:style|on[a-z]+)=", page.text) is None


def test_the_files_served_are_the_bytes_the_page_names_and_are_cached_for_good(
    page: httpx.Response, client: httpx.Client
) -> None:
    for url, integrity in LOADED.findall(page.text):
        response = client.get(url)
        head = client.head(url)

        assert response.status_code == 200
        assert integrity_of(response.content) == integrity
        assert response.headers["content-type"].startswith(("text/javascript", "text/css"))
        assert response.headers["cache-control"] == CACHE_CONTROL
        assert response.headers["x-content-type-options"] == "nosniff"
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(response.content))
        assert head.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/diagnostics/files/diagnostics.js",
        "/diagnostics/files/diagnostics.css",
        "/diagnostics/files/diagnostics.html",
        "/diagnostics/files/diagnostics.py",
        "/diagnostics/files/../diagnostics.py",
        "/diagnostics/files/..%2Fdiagnostics.py",
        "/diagnostics/files/%2e%2e%2f%2e%2e%2fapp.py",
        "/diagnostics/files/assets.py",
        "/diagnostics/files/",
        "/diagnostics/files//etc/passwd",
        "/diagnostics/diagnostics.js",
    ],
)
def test_nothing_else_is_served_from_the_files_path(server: Server, path: str) -> None:
    """Sent as written, dots and escapes included (a client would resolve `..` itself)."""
    address = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()

    assert response.status == 404, body
    assert b"import" not in body
    assert response.getheader("cache-control") is None


@pytest.mark.parametrize(
    ("host", "connect"),
    [
        ("127.0.0.1:4000", "'self' ws://127.0.0.1:4000 wss://127.0.0.1:4000"),
        ("storyframe.example", "'self' ws://storyframe.example wss://storyframe.example"),
        ("[::1]:4000", "'self' ws://[::1]:4000 wss://[::1]:4000"),
        ("evil.example; script-src *", "'self'"),
        ("evil.example 'unsafe-inline'", "'self'"),
        ("a.example:4000/path", "'self'"),
        ("", "'self'"),
        (None, "'self'"),
    ],
)
def test_the_websockets_allowed_are_the_host_the_page_was_asked_of_or_none(
    host: str | None, connect: str
) -> None:
    policy = content_security_policy(host)

    assert f"; connect-src {connect};" in policy
    assert policy.count(";") == 7


def test_the_policy_names_the_host_the_request_names(client: httpx.Client) -> None:
    response = client.get("/diagnostics", headers={"Host": "storyframe.example:8443"})

    assert response.status_code == 200
    connect = "'self' ws://storyframe.example:8443 wss://storyframe.example:8443"
    assert _policy(response)["connect-src"] == connect


async def test_the_page_is_served_without_graphiql_too(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "data")
    async with app_with(settings, graphiql=False) as app, http_client(app) as http:
        response = await http.get("/diagnostics")
        script = await http.get(diagnostics_page().scripts[-1].url)

    assert response.status_code == 200
    assert "Storyframe diagnostics" in response.text
    assert script.status_code == 200
