"""GraphiQL's page and files over plain HTTP, from the real server: the page names every file it
loads on the server itself with the hash of its bytes, the files are those bytes and are cached
for good, nothing else is served from their path, and the first tabs fit the schema."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from graphql import build_schema, parse, validate
from graphql.language import OperationDefinitionNode

from storyframe.web.assets import (
    ASSETS,
    ASSETS_PATH,
    CACHE_CONTROL,
    DIRECTORY,
    GRAPHIQL,
    SCRIPTS,
    STYLESHEETS,
    integrity_of,
)
from storyframe.web.tabs import DEFAULT_TABS
from tests.support.apps import app_with, settings_for
from tests.support.clients import http_client
from tests.support.servers import Server

SCHEMA = Path(__file__).resolve().parents[2] / "schema.graphql"
LOADED = re.compile(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"[^>]*?integrity="([^"]+)"')
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        yield client


@pytest.fixture(scope="module")
def page(client: httpx.Client) -> httpx.Response:
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    return response


def test_every_file_carried_has_the_hash_the_page_names_it_with() -> None:
    for asset in ASSETS.values():
        assert integrity_of(asset.path.read_bytes()) == asset.integrity, asset.name


def test_nothing_is_carried_but_the_listed_files_and_their_notes() -> None:
    carried = {path.name for path in DIRECTORY.iterdir()}
    assert carried == set(ASSETS) | {"README.md", "LICENSES.md"}
    readme = (DIRECTORY / "README.md").read_text()
    for asset in ASSETS.values():
        row = f"| `{asset.name}` | `{asset.package}` | {asset.version} | `{asset.source}` |"
        assert row in readme
        assert f"{asset.path.stat().st_size:,}" in readme


def test_the_page_loads_each_file_from_the_server_with_its_hash(page: httpx.Response) -> None:
    loaded = LOADED.findall(page.text)

    assert loaded == [(asset.url, asset.integrity) for asset in (*STYLESHEETS, *SCRIPTS)]
    # nothing named on another host: no URL with a scheme at all, no import map
    assert "://" not in page.text
    assert "importmap" not in page.text


def test_the_files_served_are_the_bytes_the_page_names(
    page: httpx.Response, client: httpx.Client
) -> None:
    for url, integrity in LOADED.findall(page.text):
        response = client.get(url)

        assert response.status_code == 200
        assert integrity_of(response.content) == integrity
        asset = ASSETS[url.rsplit("/", 1)[1]]
        assert response.headers["content-type"] == asset.media_type
        assert response.headers["cache-control"] == CACHE_CONTROL
        assert "immutable" in response.headers["cache-control"]
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_pages_policy_allows_its_own_script_and_nothing_elsewhere(
    page: httpx.Response,
) -> None:
    directives = page.headers["content-security-policy"].split(";")
    policy = dict(directive.strip().split(" ", 1) for directive in directives)
    (script,) = INLINE_SCRIPT.findall(page.text)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()

    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["connect-src"] == "'self'"
    assert page.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql/assets/nothing.js",
        "/graphiql/assets/README.md",
        "/graphiql/assets/LICENSES.md",
        "/graphiql/assets/graphiql.min.js.map",
        "/graphiql/assets/graphiql-3.8.3.min.js.map",
        "/graphiql/assets/GRAPHIQL-3.8.3.MIN.JS",
        "/graphiql/assets/graphiql-3.8.3.min.js%00",
        "/graphiql/assets/.",
        "/graphiql/assets/..",
        "/graphiql/assets/",
        "/graphiql/assets/../assets.py",
        "/graphiql/assets/../../view.py",
        "/graphiql/assets/..%2Fassets.py",
        "/graphiql/assets/%2e%2e%2f%2e%2e%2fview.py",
        "/graphiql/assets/..%5Cassets.py",
        "/graphiql/assets/static/graphiql/react-18.2.0.production.min.js",
        "/graphiql/assets/%2Fetc%2Fpasswd",
        "/graphiql/assets//etc/passwd",
        "/graphiql/",
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
    assert b"root:" not in body
    assert response.getheader("cache-control") is None


def test_the_files_are_answered_to_head_as_to_get(client: httpx.Client) -> None:
    for asset in ASSETS.values():
        response = client.head(asset.url)

        assert response.status_code == 200
        assert response.headers["content-length"] == str(asset.path.stat().st_size)
        assert response.headers["cache-control"] == CACHE_CONTROL


def test_the_first_tabs_are_valid_operations_with_every_variable_given() -> None:
    schema = build_schema(SCHEMA.read_text())

    for tab in DEFAULT_TABS:
        document = parse(tab.query)
        assert validate(schema, document) == [], tab.title
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        names = [operation.name.value if operation.name else None for operation in operations]
        assert names[0] == tab.title
        declared = {
            variable.variable.name.value
            for operation in operations
            for variable in operation.variable_definitions or ()
        }
        assert declared == set(tab.variables), tab.title
        assert json.loads(tab.as_graphiql()["variables"] or "{}") == tab.variables


async def test_without_graphiql_its_files_are_not_served_either(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "data")
    async with app_with(settings, graphiql=False) as app, http_client(app) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        asset = await http.get(f"{ASSETS_PATH}/{GRAPHIQL.name}")

    assert page.status_code == 404
    assert asset.status_code == 404
