"""Serving locally stored images and exports: immutable, content-addressed, streamed from disk
(with byte ranges, so a video plays while it downloads)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from storyframe.storage.local import CONTENT_TYPES, THUMBNAIL_SUFFIX, LocalStorage

# A key names its bytes, so a response never changes: cache it for a year, never revalidate.
CACHE_CONTROL = "public, max-age=31536000, immutable"
# Stored bytes are only checked to decode as an image: a PNG may also carry HTML (after its end,
# in a text chunk). Browsers must take them for what the content type says, never sniff, and
# never run anything in them if one is opened as a page.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def media_endpoint(storage: LocalStorage) -> Callable[[Request], Awaitable[Response]]:
    async def media(request: Request) -> Response:
        key = request.path_params["key"]
        path = storage.path_of(key)
        if path is None or not path.is_file():
            return JSONResponse({"error": "not found"}, 404, headers=SECURITY_HEADERS)
        thumbnail = key.endswith(THUMBNAIL_SUFFIX)
        name = key.rsplit("/", 1)[1]
        etag = '"' + name.split(".", 1)[0] + ("-thumb" if thumbnail else "") + '"'
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, **SECURITY_HEADERS}
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        content_type = "image/webp" if thumbnail else CONTENT_TYPES[name.rsplit(".", 1)[1]]
        if name.endswith(".vtt"):  # subtitles are read by players on other origins
            headers["Access-Control-Allow-Origin"] = "*"
        return FileResponse(path, media_type=content_type, headers=headers)

    return media


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
