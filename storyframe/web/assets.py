"""GraphiQL's files, carried in the package (`static/graphiql/`, whose README names where each
comes from) and served at `/graphiql/assets/<name>`.

Each file's name carries its version, so its URL never names other bytes: answers are cached for
a year and never revalidated. Only the files listed here are served; any other name is a 404,
and no name is ever looked up on disk. The page names each file with its `integrity` (SRI), the
SHA-384 of the bytes the npm package published, and a browser runs none whose bytes differ."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

ASSETS_PATH = "/graphiql/assets"
DIRECTORY = Path(__file__).resolve().parent / "static" / "graphiql"
CACHE_CONTROL = "public, max-age=31536000, immutable"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class Asset:
    """One file the GraphiQL page loads: `source` in the npm package `package`@`version`."""

    name: str
    package: str
    version: str
    source: str
    integrity: str

    @property
    def path(self) -> Path:
        return DIRECTORY / self.name

    @property
    def url(self) -> str:
        return f"{ASSETS_PATH}/{self.name}"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.path.suffix]


# The same files, byte for byte, as the ones Strawberry's own GraphiQL page loads from a CDN,
# with the same hashes.
REACT = Asset(
    "react-18.2.0.production.min.js",
    "react",
    "18.2.0",
    "umd/react.production.min.js",
    "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
)
REACT_DOM = Asset(
    "react-dom-18.2.0.production.min.js",
    "react-dom",
    "18.2.0",
    "umd/react-dom.production.min.js",
    "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
)
GRAPHIQL = Asset(
    "graphiql-3.8.3.min.js",
    "graphiql",
    "3.8.3",
    "graphiql.min.js",
    "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
)
GRAPHIQL_CSS = Asset(
    "graphiql-3.8.3.min.css",
    "graphiql",
    "3.8.3",
    "graphiql.min.css",
    "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
)
EXPLORER = Asset(
    "plugin-explorer-1.0.2.umd.js",
    "@graphiql/plugin-explorer",
    "1.0.2",
    "dist/index.umd.js",
    "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
)
EXPLORER_CSS = Asset(
    "plugin-explorer-1.0.2.css",
    "@graphiql/plugin-explorer",
    "1.0.2",
    "dist/style.css",
    "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
)

STYLESHEETS = (GRAPHIQL_CSS, EXPLORER_CSS)
"""The page's stylesheets, in order."""
SCRIPTS = (REACT, REACT_DOM, GRAPHIQL, EXPLORER)
"""The page's scripts, in the order they run: each needs the globals of those before it."""
ASSETS = {asset.name: asset for asset in (*STYLESHEETS, *SCRIPTS)}


def integrity_of(data: bytes) -> str:
    """The `integrity` attribute (SRI) that lets a browser use exactly `data`."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


async def asset(request: Request) -> Response:
    found = ASSETS.get(request.path_params["name"])
    if found is None:
        return JSONResponse({"error": "not found"}, 404, headers=NOSNIFF)
    headers = {"Cache-Control": CACHE_CONTROL, **NOSNIFF}
    return FileResponse(found.path, media_type=found.media_type, headers=headers)


def asset_routes() -> list[Route]:
    """`GET /graphiql/assets/<name>` (and `HEAD`), for the names in `ASSETS`."""
    return [Route(ASSETS_PATH + "/{name}", asset, methods=["GET", "HEAD"])]
