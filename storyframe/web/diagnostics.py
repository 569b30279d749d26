"""The diagnostics page at `GET /diagnostics`: log in (or paste a token), run a suite of checks and
follow it as it goes, each check shown with its images and the JSON it sent and received.

The page is static: it reaches the server only through the public GraphQL API, from the browser
(HTTP for queries and mutations, WebSocket for the run's events). Its script and stylesheet are
carried in the package and served at `/diagnostics/files/<name>`, each name carrying the hash of
its bytes, so an answer is cached for good; the page names each with its `integrity` (SRI).

Its `Content-Security-Policy` holds it to its own origin: scripts, styles and requests go
nowhere else, images are its own or data: URLs (the checks' images come as such), and no form
is ever submitted by the browser itself, so a password never reaches an address bar."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storyframe.web.assets import CACHE_CONTROL, NOSNIFF, integrity_of

PAGE_PATH = "/diagnostics"
FILES_PATH = "/diagnostics/files"
HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "diagnostics.html"
SCRIPTS = (HERE / "diagnostics-view.js", HERE / "diagnostics.js")
"""The page's scripts, in the order they run: the second uses what the first defines."""
STYLESHEET = HERE / "diagnostics.css"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# A host name, an IPv4 address or a bracketed IPv6 one, with an optional port: what a Host
# header may hold and a policy may name. Anything else is left out of the policy.
HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    **NOSNIFF,
}


@dataclass(frozen=True)
class PageFile:
    """A script or the stylesheet of the page: its bytes and the versioned name it is served
    under."""

    source: Path
    data: bytes

    @property
    def name(self) -> str:
        digest = hashlib.sha256(self.data).hexdigest()[:16]
        return f"{self.source.stem}.{digest}{self.source.suffix}"

    @property
    def url(self) -> str:
        return f"{FILES_PATH}/{self.name}"

    @property
    def integrity(self) -> str:
        return integrity_of(self.data)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.source.suffix]


@dataclass(frozen=True)
class DiagnosticsPage:
    html: str
    scripts: tuple[PageFile, ...]
    stylesheet: PageFile

    @property
    def files(self) -> dict[str, PageFile]:
        return {file.name: file for file in (*self.scripts, self.stylesheet)}


@functools.cache
def diagnostics_page() -> DiagnosticsPage:
    """The page and its files, read once: nothing in them changes while the process runs."""
    scripts = tuple(PageFile(path, path.read_bytes()) for path in SCRIPTS)
    stylesheet = PageFile(STYLESHEET, STYLESHEET.read_bytes())
    html = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        stylesheet=stylesheet.url,
        stylesheet_integrity=stylesheet.integrity,
        scripts="\n".join(
            f'    <script src="{script.url}" integrity="{script.integrity}" defer></script>'
            for script in scripts
        ),
    )
    return DiagnosticsPage(html, scripts, stylesheet)


def content_security_policy(host: str | None) -> str:
    """The page's policy. `'self'` does not cover WebSockets in every browser, so the page's own
    host is named for them too, with both schemes (a proxy may end TLS before the server)."""
    connect = ["'self'"]
    if host is not None and HOST.fullmatch(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            # The checks' images come as data: URLs.
            "img-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


async def page(request: Request) -> Response:
    headers = {
        "Content-Security-Policy": content_security_policy(request.headers.get("host")),
        **PAGE_HEADERS,
    }
    return Response(diagnostics_page().html, media_type="text/html; charset=utf-8", headers=headers)


async def page_file(request: Request) -> Response:
    found = diagnostics_page().files.get(request.path_params["name"])
    if found is None:
        return JSONResponse({"error": "not found"}, 404, headers=NOSNIFF)
    headers = {"Cache-Control": CACHE_CONTROL, **NOSNIFF}
    return Response(found.data, media_type=found.media_type, headers=headers)


def diagnostics_routes() -> list[Route]:
    """`GET /diagnostics` and the page's files (and `HEAD` of each)."""
    return [
        Route(PAGE_PATH, page, methods=["GET", "HEAD"]),
        Route(FILES_PATH + "/{name}", page_file, methods=["GET", "HEAD"]),
    ]
