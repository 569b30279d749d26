"""The GraphiQL page at `GET /graphql`: GraphiQL, its explorer and the first tabs, every file it
loads served by Storyframe itself (see `assets`), so that it works with no internet.

The page's `Content-Security-Policy` holds it to its own origin: scripts, styles and requests
(HTTP and WebSocket) go nowhere else, and its one inline script runs because the policy names
its hash."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from string import Template

from starlette.responses import HTMLResponse

from storyframe.web.assets import SCRIPTS, STYLESHEETS, Asset
from storyframe.web.tabs import DEFAULT_TABS

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "graphiql.html"
SCRIPT = HERE / "graphiql.js"


@dataclass(frozen=True)
class Page:
    html: str
    headers: dict[str, str]


@functools.cache
def graphiql_page() -> Page:
    """The page and its headers, made once: nothing in them changes while the process runs."""
    script = SCRIPT.read_text(encoding="utf-8")
    html = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        stylesheets="\n".join(_stylesheet(asset) for asset in STYLESHEETS),
        scripts="\n".join(_script(asset) for asset in SCRIPTS),
        tabs=_json_in_html([tab.as_graphiql() for tab in DEFAULT_TABS]),
        script=script,
    )
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'sha256-{script_hash}'",
            # GraphiQL sets style attributes as it lays itself out.
            "style-src 'self' 'unsafe-inline'",
            # The stylesheets carry their fonts and icons as data: URLs.
            "img-src 'self' data:",
            "font-src 'self' data:",
            # `'self'` covers the WebSocket to the same host and port.
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    headers = {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return Page(html, headers)


def graphiql_response() -> HTMLResponse:
    page = graphiql_page()
    return HTMLResponse(page.html, headers=page.headers)


def _stylesheet(asset: Asset) -> str:
    return f'    <link rel="stylesheet" href="{asset.url}" integrity="{asset.integrity}" />'


def _script(asset: Asset) -> str:
    return f'    <script src="{asset.url}" integrity="{asset.integrity}"></script>'


def _json_in_html(value: object) -> str:
    """JSON to put inside a `<script>` element: no `<`, `>` or `&` that HTML would read."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
