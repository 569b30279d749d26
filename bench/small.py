"""Benchmark: small requests, as a frontend editor sends many, against plain endpoints.

    .venv/bin/python -m bench.small [--database-url URL | --postgres] [--seconds N]
                                    [--rounds R] [--concurrency C]

Seeds a user with a few projects, a video and a frame into a fresh SQLite database in a temporary
directory (or the given database, or a throwaway PostgreSQL server), starts the real server with
uvicorn in a subprocess on a free loopback port (`bench.plain:create_bench_app`, as
`bench.storyboard` does), and drives four small requests with the user's bearer token, each
against a plain Starlette endpoint of the same app that answers the same bytes, precomputed:

- `small`: `{ viewer { id } projects(first: 5) { nodes { id name } } }`;
- `typename`: `{ __typename }` (which needs no viewer, so the token is not read);
- `viewer`: `{ viewer { id } }`, the token's lookup and nothing else;
- `update-frame`: the `updateFrame` mutation retitling the frame (its answer's `updatedAt`
  changes from one request to the next, so the floor answers bytes of the same size and shape).

The client is a minimal keep-alive HTTP/1.1 client on asyncio streams and uvloop (one connection
per request in flight, answers read by Content-Length), so that it costs less CPU than the server
it measures; httpx costs more. Endpoints are driven in turn (GraphQL, plain, next case...), round
after round, and the figures are req/s, latency, the server's CPU and SQL statements per request
(from `GET /bench/stats`) and, the headline, the ratio of server CPU per request GraphQL / plain.
It prints figures; it never asserts them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvloop

from bench.plain import SMALL_CASES
from bench.storyboard import (
    MAX_REQUESTS,
    STARTUP_SECONDS,
    Load,
    Result,
    ServerStats,
    dialect,
    load_arguments,
    migrate,
    on_database,
    server,
)
from storyframe.runtime import build_runtime
from storyframe.schema.ids import encode_id
from storyframe.settings import Settings

PROJECTS = 5
SMALL = "{ viewer { id } projects(first: 5) { nodes { id name } } }"
TYPENAME = "{ __typename }"
VIEWER = "{ viewer { id } }"
UPDATE_FRAME = (
    "mutation UpdateFrame($input: UpdateFrameInput!) { updateFrame(input: $input) "
    "{ userErrors { field message code } frame { id title updatedAt } } }"
)
# What Apollo Client sends.
ACCEPT = "application/graphql-response+json,application/json;q=0.9"


# --- seeding ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seeded:
    user_id: str
    token: str
    frame_id: str


def _known(pk: int | None) -> int:
    assert pk is not None
    return pk


async def seed(database_url: str, data_dir: Path) -> Seeded:
    """Migrate the database and seed a user with `PROJECTS` projects, a video in the first and
    a frame in it (a fresh e-mail each run, so a database of yours can be seeded again)."""
    await migrate(database_url)
    runtime = build_runtime(Settings(database_url=database_url, data_dir=data_dir))
    try:
        account = await runtime.accounts.sign_up(
            f"small-{uuid.uuid4().hex[:12]}@storyframe.test", "ninety frames of quiet rain", "bench"
        )
        user = _known(account.user.id)
        services = runtime.services_for(user)
        projects = [
            _known((await services.projects.create(f"Project {n}")).id)
            for n in range(1, PROJECTS + 1)
        ]
        video = _known((await services.videos.create(projects[0], "Video")).id)
        frame = _known((await services.frames.create(video, "Frame 1")).id)
        return Seeded(encode_id("User", user), account.token, encode_id("Frame", frame))
    finally:
        await runtime.aclose()


# --- the client: keep-alive HTTP/1.1 on asyncio streams ----------------------------------------


class ProtocolError(Exception):
    pass


def http_request(
    method: str, path: str, host: str, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> bytes:
    """A whole HTTP/1.1 request, ready to write again and again."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def header(head: bytes, name: bytes) -> bytes | None:
    """The value of a response header (the first of that name), by lower-case `name`."""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


class Connection:
    """One keep-alive connection: a request written whole, its answer read by Content-Length
    (what uvicorn sends for a body given whole; chunked answers are refused)."""

    __slots__ = ("_reader", "_writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes, bytes]:
        """Status, head and body of the answer to the request."""
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            if status in (204, 304):  # no body
                return status, head, b""
            raise ProtocolError(f"an answer without Content-Length: {head!r}")
        at += 17
        body = await self._reader.readexactly(int(lower[at : lower.index(b"\r\n", at)]))
        return status, head, body

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


async def _connect_when_up(host: str, port: int) -> Connection:
    """A connection to the server once its `/readyz` answers 200."""
    ready = http_request("GET", "/readyz", f"{host}:{port}")
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            connection = await Connection.open(host, port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        status, _, _ = await connection.exchange(ready)
        if status == 200:
            return connection
        await connection.close()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not start within {STARTUP_SECONDS:.0f} s")


# --- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    name: str  # the plain endpoint's, `/plain/<name>`
    label: str
    graphql: bytes  # the requests, whole
    plain: bytes
    target: float | None  # GraphQL CPU per request / plain CPU per request, at most
    varies: bool = False  # whether the GraphQL answer changes from one request to the next
    expect: bytes = b""  # what every good answer contains


def cases(host: str, seeded: Seeded) -> list[Case]:
    headers = {
        "Content-Type": "application/json",
        "Accept": ACCEPT,
        "Authorization": f"Bearer {seeded.token}",
    }

    def pair(name: str, query: str, variables: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        body = orjson.dumps(payload)
        return (
            http_request("POST", "/graphql", host, body, headers),
            http_request("POST", f"/plain/{name}", host, body, headers),
        )

    retitle = {"input": {"id": seeded.frame_id, "title": "Frame 1, retitled"}}
    found = [
        Case("small", "small query", *pair("small", SMALL), target=15.0),
        Case("typename", "{ __typename }", *pair("typename", TYPENAME), target=8.0),
        Case("viewer", "{ viewer { id } }", *pair("viewer", VIEWER), target=None),
        Case(
            "update-frame",
            "updateFrame",
            *pair("update-frame", UPDATE_FRAME, retitle),
            target=None,
            varies=True,
            expect=b'"userErrors":[]',
        ),
    ]
    assert tuple(case.name for case in found) == SMALL_CASES
    return found


def _check_answer(case: Case, status: int, body: bytes, seeded: Seeded) -> Any:
    answer: Any = orjson.loads(body)
    if status != 200 or "errors" in answer:
        raise RuntimeError(f"{case.label}: {status} {body.decode()}")
    data = answer["data"]
    if case.name == "small":
        nodes = data["projects"]["nodes"]
        assert data["viewer"]["id"] == seeded.user_id, data
        assert len(nodes) == PROJECTS, data
    elif case.name == "typename":
        assert data == {"__typename": "Query"}, data
    elif case.name == "viewer":
        assert data == {"viewer": {"id": seeded.user_id}}, data
    else:
        assert data["updateFrame"]["userErrors"] == [], data
        assert data["updateFrame"]["frame"]["id"] == seeded.frame_id, data
    return answer


def _without_updated_at(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {k: None if k == "updatedAt" else _without_updated_at(v) for k, v in answer.items()}
    if isinstance(answer, list):
        return [_without_updated_at(v) for v in answer]
    return answer


def _headers_but_date(head: bytes) -> list[bytes]:
    lines = (line.lower() for line in head.split(b"\r\n")[1:])
    return sorted(line for line in lines if line and not line.startswith(b"date:"))


async def prepare(control: Connection, host: str, case: Case, seeded: Seeded) -> tuple[int, int]:
    """Check the GraphQL answer, give its bytes to the plain endpoint, and compare the two:
    the sizes of the two answers."""
    status, head, body = await control.exchange(case.graphql)
    _check_answer(case, status, body, seeded)
    media_type = (header(head, b"content-type") or b"application/json").decode()
    put = http_request(
        "PUT", f"/bench/answers/{case.name}", host, body, {"Content-Type": media_type}
    )
    status, _, _ = await control.exchange(put)
    if status != 204:
        raise RuntimeError(f"PUT /bench/answers/{case.name}: {status}")
    status, graphql_head, graphql = await control.exchange(case.graphql)
    answer = _check_answer(case, status, graphql, seeded)
    status, plain_head, plain = await control.exchange(case.plain)
    if status != 200:
        raise RuntimeError(f"/plain/{case.name}: {status}")
    if case.varies:
        same = len(graphql) == len(plain) and _without_updated_at(answer) == _without_updated_at(
            orjson.loads(plain)
        )
        verdict = "same size and shape (updatedAt differs)" if same else "DIFFERENT"
    else:
        verdict = "byte-identical" if graphql == plain else "DIFFERENT"
    heads = _headers_but_date(graphql_head) == _headers_but_date(plain_head)
    print(
        f"{case.label}: GraphQL and plain answers {verdict}, {len(graphql)} bytes, "
        f"{media_type}; headers (but Date) {'identical' if heads else 'DIFFERENT'}"
    )
    if not heads:
        print(f"  GraphQL: {_headers_but_date(graphql_head)}")
        print(f"  plain:   {_headers_but_date(plain_head)}")
    return len(graphql), len(plain)


# --- the load --------------------------------------------------------------------------------


@dataclass(slots=True)
class Figures:
    """One endpoint's figures over the measured phases."""

    result: Result
    cpu_ms_of_rounds: list[float] = field(default_factory=list)
    client_cpu_seconds: float = 0.0

    @property
    def cpu_ms(self) -> float:
        return self.result.per_request(self.result.server.cpu_seconds * 1000)


async def _server_stats(control: Connection, request: bytes) -> ServerStats:
    _, _, body = await control.exchange(request)
    stats = orjson.loads(body)
    return ServerStats(
        int(stats["statements"]),
        float(stats["cpu_seconds"]),
        tuple(float(s) for s in stats["gc_seconds"]),
    )


@dataclass(frozen=True, slots=True)
class Driver:
    pool: list[Connection]  # one per request in flight
    control: Connection  # for the server's stats
    stats: bytes  # GET /bench/stats, whole

    async def drive(self, request: bytes, expect: bytes, seconds: float, into: Figures) -> None:
        """Keep one request in flight per connection for `seconds`; add what happened to `into`.
        An answer is good when it is a 200 without `"errors":` and with `expect`."""
        latencies: list[float] = []
        failures = 0
        before = await _server_stats(self.control, self.stats)
        client_before = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(connection: Connection) -> None:
            nonlocal failures
            clock = time.perf_counter
            while (sent := clock()) < deadline and len(latencies) < MAX_REQUESTS:
                status, _, body = await connection.exchange(request)
                latencies.append(clock() - sent)
                if status != 200 or b'"errors":' in body or expect not in body:
                    failures += 1

        await asyncio.gather(*(worker(connection) for connection in self.pool))
        elapsed = time.perf_counter() - started
        into.client_cpu_seconds += time.process_time() - client_before
        server = await _server_stats(self.control, self.stats) - before
        result = into.result
        result.server = result.server + server
        result.requests += len(latencies)
        result.failures += failures
        result.seconds += elapsed
        result.latencies.extend(latencies)
        result.rps_of_rounds.append(len(latencies) / elapsed)
        into.cpu_ms_of_rounds.append(server.cpu_seconds * 1000 / max(1, len(latencies)))


async def measure(
    driver: Driver, sized: list[tuple[Case, tuple[int, int]]], settings: Load
) -> list[tuple[Case, Figures, Figures]]:
    """Warm every endpoint up, then drive them in turn, round after round (GraphQL, plain, next
    case...), so that whatever else the machine does weighs on all of them alike."""
    figures = [
        (case, Figures(Result("graphql", graphql)), Figures(Result("plain", plain)))
        for case, (graphql, plain) in sized
    ]
    for case, _ in sized:
        for request in (case.graphql, case.plain):
            await driver.drive(request, case.expect, settings.warmup, Figures(Result("", 0)))
    for _ in range(settings.rounds):
        for case, graphql, plain in figures:
            await driver.drive(case.graphql, case.expect, settings.seconds, graphql)
            await driver.drive(case.plain, case.expect, settings.seconds, plain)
    return figures


def report(figures: list[tuple[Case, Figures, Figures]], settings: Load) -> None:
    print(
        f"\n{'case':<15} {'endpoint':<8} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'CPU ms/req':>10} {'SQL/req':>7} {'bytes':>6} {'client CPU ms/req':>17}"
    )
    for case, *pair in figures:
        for f in pair:
            r = f.result
            print(
                f"{case.label if r.name == 'graphql' else '':<15} {r.name:<8} {r.rps:8.0f} "
                f"{r.percentile(0.50):7.2f} {r.percentile(0.95):7.2f} {f.cpu_ms:10.3f} "
                f"{r.per_request(r.server.statements):7.2f} {r.response_bytes:6d} "
                f"{r.per_request(f.client_cpu_seconds * 1000):17.3f}"
                + (f"  ({r.failures} failed)" if r.failures else "")
            )
    print(
        f"\nserver CPU per request, GraphQL / plain (the headline), at concurrency "
        f"{settings.concurrency}, {settings.rounds} rounds x {settings.seconds:g} s:"
    )
    for case, graphql, plain in figures:
        ratio = graphql.cpu_ms / plain.cpu_ms if plain.cpu_ms else float("nan")
        rounds = [
            g / p
            for g, p in zip(graphql.cpu_ms_of_rounds, plain.cpu_ms_of_rounds, strict=True)
            if p
        ]
        target = (
            f"target <= {case.target:g}x: {'met' if ratio <= case.target else 'MISSED'}"
            if case.target is not None
            else "no target"
        )
        rps = plain.result.rps / graphql.result.rps if graphql.result.rps else float("nan")
        print(
            f"  {case.label:<15} {ratio:6.1f}x  ({target}; by round: "
            + ", ".join(f"{r:.1f}" for r in rounds)
            + f"; req/s plain / GraphQL {rps:.1f}x)"
        )


async def run(base_url: str, seeded: Seeded, settings: Load) -> None:
    split = urlsplit(base_url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    address = f"{host}:{port}"
    control = await _connect_when_up(host, port)
    all_cases = cases(address, seeded)
    sizes = [await prepare(control, address, case, seeded) for case in all_cases]
    pool = [await Connection.open(host, port) for _ in range(settings.concurrency)]
    gc.collect()
    gc.freeze()
    try:
        driver = Driver(pool, control, http_request("GET", "/bench/stats", address))
        figures = await measure(driver, list(zip(all_cases, sizes, strict=True)), settings)
    finally:
        for connection in [*pool, control]:
            await connection.close()
    report(figures, settings)


def bench(database_url: str | None, data_dir: Path, args: argparse.Namespace) -> None:
    url = database_url or f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
    started = time.perf_counter()
    seeded = asyncio.run(seed(url, data_dir))
    print(
        f"{dialect(url)}: seeded a user with {PROJECTS} projects, a video and a frame in "
        f"{time.perf_counter() - started:.1f} s; load average {_load()}"
    )
    load = Load(args.seconds, min(2.0, max(0.5, args.seconds / 3)), args.concurrency, args.rounds)
    with server(url, data_dir) as base_url:
        uvloop.run(run(base_url, seeded, load))
    print(f"load average {_load()}")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = load_arguments("bench.small", __doc__, seconds=3.0)
    args = parser.parse_args(argv)
    if not (0 < args.seconds <= 600 and 0 < args.concurrency <= 256 and 0 < args.rounds <= 20):
        parser.error("--seconds in (0, 600], --concurrency in [1, 256], --rounds in [1, 20]")
    return on_database(args, bench)


if __name__ == "__main__":
    sys.exit(main())
