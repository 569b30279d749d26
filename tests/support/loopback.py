"""A threaded HTTP server on 127.0.0.1, on which the fakes of outside services answer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as it arrived: its path unquoted, the last value of each query parameter,
    the header names in lower case, and the whole body."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class Streamed(bytes):
    """A body sent as it is made (the bytes themselves are empty): the chunks `chunks` yields,
    each written at once in HTTP/1.1 chunked transfer, the connection closed after it. An empty
    chunk breaks the connection there, without the body's last chunk, as a connection lost
    mid-stream."""

    chunks: Generator[bytes, None, None]

    @staticmethod
    def of(chunks: Generator[bytes, None, None]) -> Streamed:
        stream = Streamed()
        stream.chunks = chunks
        return stream


Answer = tuple[int, dict[str, str], bytes]
"""Status, headers (Content-Length is added) and body, which may be `Streamed`."""


class LoopbackServer:
    """Serves GET and POST on a free port of 127.0.0.1, each request on a thread of its own,
    with what `answer` gives. A context manager: serves from `__enter__` to `__exit__`, which
    shuts the server down and joins every request thread.

    `quiet`: a client that hangs up before its answer is written (a call that timed out) is no
    error of the server's; nothing that goes wrong in a request's thread is reported.
    """

    def __init__(
        self,
        answer: Callable[[Request], Answer],
        *,
        name: str,
        thread_name: str,
        quiet: bool = False,
    ) -> None:
        self.answer = answer
        self.name = name
        self.thread_name = thread_name
        self.quiet = quiet
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"the {self.name} is not running")
        return int(self._server.server_address[1])

    def __enter__(self) -> LoopbackServer:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self.thread_name,
        )
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()  # joins the request threads
        thread.join(timeout=5)
        if thread.is_alive():
            raise RuntimeError(f"the {self.name} did not stop")
        self._thread = None


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so that server_close() joins every request thread
    block_on_close = True

    def __init__(self, loopback: LoopbackServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.loopback = loopback

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.loopback.quiet:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    timeout = 5  # a silent client cannot hold the server past teardown

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        loopback = cast(_Server, self.server).loopback
        parts = urlsplit(self.path)
        request = Request(
            method=method,
            path=unquote(parts.path),
            query={key: values[-1] for key, values in parse_qs(parts.query).items()},
            headers={key.lower(): value for key, value in self.headers.items()},
            body=self.rfile.read(int(self.headers.get("content-length") or 0)),
        )
        status, headers, payload = loopback.answer(request)
        try:
            if isinstance(payload, Streamed):
                self._stream(status, headers, payload.chunks)
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            if not loopback.quiet:
                raise

    def _stream(
        self, status: int, headers: dict[str, str], chunks: Generator[bytes, None, None]
    ) -> None:
        try:
            self.protocol_version = "HTTP/1.1"  # for chunked transfer, this answer only
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in chunks:
                if not chunk:  # dropped: the body is left unfinished
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        finally:
            chunks.close()
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass
