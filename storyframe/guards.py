"""ASGI guards in front of the GraphQL endpoint: body size, time limit, WebSocket origins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("storyframe.guards")


def error_body(message: str, code: str) -> bytes:
    """A GraphQL-shaped error response body: `{"errors": [{message, extensions: {code}}]}`."""
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})


async def _respond(send: Send, status: int, body: bytes, *, close: bool = True) -> None:
    """Answer with a JSON body; `close` when the request's body may be left unread."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses HTTP requests whose body is over `max_bytes` (`max_multipart_bytes` for uploads)
    with 413, counting as it streams."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, max_multipart_bytes: int | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_multipart_bytes = max_multipart_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.max_multipart_bytes if multipart else self.max_bytes
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        message = f"request body is over {limit} bytes"
        await _respond(send, 413, error_body(message, "REQUEST_TOO_LARGE"))


_DEADLINE = "storyframe.deadline"


def extend_time_limit(scope: Scope, seconds: float) -> None:
    """Give the request at least `seconds` more from now: for work known to be slow (image
    generation), which keeps its own timeouts."""
    deadline = scope.get("state", {}).get(_DEADLINE)
    if isinstance(deadline, asyncio.Timeout):
        when = asyncio.get_running_loop().time() + seconds
        current = deadline.when()
        if current is not None and current < when:
            deadline.reschedule(when)


class TimeLimit:
    """Answers 503 when a GraphQL request has not been answered within `seconds`. (Media
    downloads stream for as long as the client reads.)"""

    def __init__(self, app: ASGIApp, seconds: float, path: str = "/graphql") -> None:
        self.app = app
        self.seconds = seconds
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self.seconds) as deadline:
                scope.setdefault("state", {})[_DEADLINE] = deadline
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            log.warning("request timed out", extra={"path": scope.get("path")})
            if not started:
                message = f"the request took longer than {self.seconds:g} seconds"
                await _respond(send, 503, error_body(message, "TIMEOUT"))


class WebSocketOrigins:
    """Closes WebSocket handshakes from browser origins not in the allowed list, except the
    server's own (a page it serves, GraphiQL's, subscribing to its API)."""

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = {origin.rstrip("/") for origin in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            headers = dict(scope["headers"])
            origin = headers.get(b"origin")
            if (
                origin is not None
                and origin.decode("latin-1").rstrip("/") not in self.allowed
                and not _same_origin(origin, headers.get(b"host"))
            ):
                await receive()  # the websocket.connect message
                await send({"type": "websocket.close", "code": 4403})
                return
        await self.app(scope, receive, send)


def _same_origin(origin: bytes, host: bytes | None) -> bool:
    """Whether the page that opens the WebSocket came from the host it connects to."""
    if host is None:
        return False
    netloc = urlsplit(origin.decode("latin-1")).netloc
    return bool(netloc) and netloc.lower() == host.decode("latin-1").lower()


# Headers a browser cannot send cross-origin without a CORS preflight; Apollo's clients send one.
PREFLIGHT_HEADERS = (b"apollo-require-preflight", b"x-apollo-operation-name", b"graphql-preflight")


_NO_CSRF_HEADER = "no CSRF header: none of " + ", ".join(h.decode() for h in PREFLIGHT_HEADERS)
_CSRF_MESSAGE = (
    "multipart requests need an `Apollo-Require-Preflight: true` header "
    "(cross-site request forgery guard)"
)


class MultipartCsrf:
    """Refuses multipart requests that carry none of `PREFLIGHT_HEADERS`: a plain HTML form on
    another site can post multipart without a preflight, but cannot add such a header.

    The body is read (and dropped) before the answer: a client still sending an upload when
    the connection closed would see a reset, not the error. `BodyLimit`, outside, bounds its
    size, and `seconds` the time it may take."""

    def __init__(self, app: ASGIApp, seconds: float | None = None) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
            if multipart and not any(name in headers for name in PREFLIGHT_HEADERS):
                log.warning(
                    "multipart request refused",
                    extra={"reason": _NO_CSRF_HEADER, "path": scope.get("path")},
                )
                await self._refuse(headers, receive, send)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, headers: dict[bytes, bytes], receive: Receive, send: Send) -> None:
        body = error_body(_CSRF_MESSAGE, "CSRF_HEADER_MISSING")
        if headers.get(b"expect", b"").lower() == b"100-continue":
            # The client waits to be asked for the body: answer without asking.
            await _respond(send, 400, body)
            return
        try:
            async with asyncio.timeout(self.seconds):
                read = await _discard_body(receive)
        except TimeoutError:  # too slow to wait for: answer, and close
            await _respond(send, 400, body)
            return
        if read:  # (otherwise the client went away: no one to answer)
            await _respond(send, 400, body, close=False)


async def _discard_body(receive: Receive) -> bool:
    """Read the request body to its end; False when the client went away first."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False
        if not message.get("more_body", False):
            return True
