"""The guard against cross-site uploads, as clients see it over a real connection: an upload
without the header is answered with the error, not a reset, even while it is still sending."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import uvicorn
from starlette.applications import Starlette

from storyframe.settings import Settings
from tests.support.apps import app_with
from tests.support.images import image_bytes

BOUNDARY = "storyframe-test-boundary"
CHUNK = 64 * 1024
FILE_BYTES = 4 * 1024 * 1024
# A bound on waiting for an answer, reached only when the server is not answering at all.
EXCHANGE_BOUND = 60


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[tuple[str, int]]:
    """The app behind uvicorn on a loopback socket, listening before this yields (so a client
    may connect at once: the connection waits in the backlog until uvicorn accepts it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    serving_task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        host, port = sock.getsockname()
        yield host, port
    finally:
        server.should_exit = True
        await serving_task
        sock.close()


def _upload_body() -> bytes:
    """A multipart `uploadImages` request with one large file part."""
    operations = json.dumps(
        {
            "query": 'mutation($f: [Upload!]!) { uploadImages(input: {targetId: "x", '
            "files: $f}) { userErrors { code } } }",
            "variables": {"f": [None]},
        }
    )
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        f"{operations}\r\n",
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
        '{"0": ["variables.f.0"]}\r\n',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n",
    ]
    image = image_bytes()
    padding = b"\0" * (FILE_BYTES - len(image))
    return "".join(parts).encode() + image + padding + f"\r\n--{BOUNDARY}--\r\n".encode()


def _head(host: str, port: int, length: int, *extra: str) -> bytes:
    lines = [
        "POST /graphql HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    """One HTTP/1.1 response with a Content-Length, leaving the connection usable."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(int(status_line.split()[1]), headers, body)


def _code(answer: Answer) -> str:
    code: str = json.loads(answer.body)["errors"][0]["extensions"]["code"]
    return code


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # refused before any query
async def test_a_large_upload_without_the_header_gets_the_error_not_a_reset(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    body = _upload_body()
    caplog.set_level(logging.WARNING, logger="storyframe.guards")

    async with serving(app) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            # when: the body goes out a chunk at a time, as a client streams a file
            writer.write(_head(host, port, len(body)))
            for start in range(0, len(body), CHUNK):
                writer.write(body[start : start + CHUNK])
                await writer.drain()
            async with asyncio.timeout(EXCHANGE_BOUND):
                refused = await _read_answer(reader)
                # the connection stays open for the client's next request
                writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
                await writer.drain()
                next_answer = await _read_answer(reader)
        finally:
            writer.close()
            await writer.wait_closed()

    # then
    assert refused.status == 400
    assert refused.headers["content-type"] == "application/json"
    assert _code(refused) == "CSRF_HEADER_MISSING"
    assert "Apollo-Require-Preflight" in json.loads(refused.body)["errors"][0]["message"]
    assert next_answer.status == 200
    warnings = [r for r in caplog.records if r.name == "storyframe.guards"]
    assert len(warnings) == 1
    (warning,) = warnings
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == "multipart request refused"
    assert "apollo-require-preflight" in warning.__dict__["reason"]
    assert warning.exc_info is None


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # refused before any query
async def test_an_upload_waiting_for_100_continue_is_refused_before_it_sends_its_body(
    app: Starlette,
) -> None:
    # given
    body = _upload_body()

    async with serving(app) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            # when: the client sends its headers and waits to be asked for the body
            writer.write(_head(host, port, len(body), "Expect: 100-continue"))
            await writer.drain()
            async with asyncio.timeout(EXCHANGE_BOUND):
                answer = await _read_answer(reader)
                # then: told at once, not asked for the body (`100 Continue`)
                assert answer.status == 400
                rest = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()

    # then
    assert _code(answer) == "CSRF_HEADER_MISSING"
    assert answer.headers["connection"] == "close"
    assert rest == b""


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # refused before any query
async def test_an_upload_that_stops_sending_is_answered_within_the_request_time_limit(
    settings: Settings,
) -> None:
    # given
    body = _upload_body()

    async with (
        app_with(settings, request_timeout_seconds=0.5) as app,
        serving(app) as (host, port),
    ):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            # when: a part of the body, then nothing more
            writer.write(_head(host, port, len(body)) + body[:CHUNK])
            await writer.drain()
            async with asyncio.timeout(EXCHANGE_BOUND):
                answer = await _read_answer(reader)
                rest = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()

    # then: not waited for any longer, told why, and the connection closed
    assert answer.status == 400
    assert _code(answer) == "CSRF_HEADER_MISSING"
    assert answer.headers["connection"] == "close"
    assert rest == b""
