"""Benchmark: the storyboard query over HTTP against the plain JSON endpoint (the floor).

    .venv/bin/python -m bench.storyboard [--database-url URL | --postgres] [--seconds N]
                                         [--rounds R] [--concurrency C] [--frames F]
                                         [--no-gc-freeze]

Seeds a video (100 frames x 5 messages x 2 images, a selected image per frame, an attached image
per message; `a_storyboard` of `tests.support.seeds`) into a fresh SQLite database in a temporary
directory (or the given database, or a throwaway PostgreSQL server), starts the real server with
uvicorn in a subprocess on a free loopback port (`bench.plain:create_bench_app`: the app of
`storyframe.app.create_app` plus the plain endpoint), warms both endpoints up, then drives them in
turn, round after round, with httpx at a fixed concurrency for a bounded time, and prints latency,
throughput, SQL statements, server CPU and GC time per request, and response size. It prints
figures; it never asserts them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.plain import GC_FREEZE
from storyframe.db.engine import create_engine
from storyframe.db.migrate import upgrade
from storyframe.runtime import build_runtime
from storyframe.schema.ids import encode_id
from storyframe.services.image_places import StoredImage
from storyframe.settings import Settings
from tests.support.images import stored_image
from tests.support.seeds import a_storyboard, seeds_for

ROOT = Path(__file__).resolve().parent.parent

STORYBOARD = (
    "query Storyboard($id: ID!) { video(id: $id) { frames { selectedImage { url } "
    "messages(first: 3) { edges { node { images { url } attachedImages { url } } } } } } }"
)

FRAMES = 100
MESSAGES_PER_FRAME = 5
IMAGES_PER_MESSAGE = 2
MAX_REQUESTS = 200_000  # per phase, whatever the duration: loops stay bounded in count too
STARTUP_SECONDS = 30.0


# --- seeding ---------------------------------------------------------------------------------


_serial = itertools.count(1)


def _stored() -> StoredImage:
    n = next(_serial)
    return stored_image(
        f"bench/{n:08d}.png",
        base_url="http://127.0.0.1/media/",
        width=1024,
        height=576,
        byte_size=350_000,
    )


async def migrate(database_url: str) -> None:
    """Bring the database's schema up to date, as `storyframe migrate` does."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def seed(database_url: str, data_dir: Path, frames: int) -> tuple[int, str]:
    """Migrate the database and seed one storyboard video: its primary key, and a token of
    the account that owns it."""
    await migrate(database_url)
    runtime = build_runtime(Settings(database_url=database_url, data_dir=data_dir))
    try:
        account = await runtime.accounts.sign_up(
            "storyboard@storyframe.test", "ninety frames of quiet rain", "bench"
        )
        assert account.user.id is not None
        services = runtime.services_for(account.user.id)
        seeds = seeds_for(runtime, account.user.id)
        video = await a_storyboard(
            services,
            seeds,
            frames,
            messages=MESSAGES_PER_FRAME,
            images=IMAGES_PER_MESSAGE,
            stored=_stored,
        )
        return video, account.token
    finally:
        await runtime.aclose()


# --- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(database_url: str, data_dir: Path, *, gc_freeze: bool = True) -> Iterator[str]:
    """Run the bench app with uvicorn in a subprocess on a free loopback port; its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STORYFRAME_DATA_DIR": str(data_dir),
        "GRAPHIQL": "false",
        GC_FREEZE: "1" if gc_freeze else "0",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.plain:create_bench_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _wait_until_up(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not start within {STARTUP_SECONDS:.0f} s")


# --- the load --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    method: str
    path: str
    params: dict[str, str] | None = None
    body: bytes | None = None

    async def call(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.request(
            self.method,
            self.path,
            params=self.params,
            content=self.body,
            headers={"content-type": "application/json"} if self.body else None,
        )


@dataclass(frozen=True, slots=True)
class ServerStats:
    """What the server has done so far: SQL statements, CPU seconds, GC seconds per generation."""

    statements: int = 0
    cpu_seconds: float = 0.0
    gc_seconds: tuple[float, ...] = (0.0, 0.0, 0.0)

    def __add__(self, other: ServerStats) -> ServerStats:
        return ServerStats(
            self.statements + other.statements,
            self.cpu_seconds + other.cpu_seconds,
            tuple(a + b for a, b in zip(self.gc_seconds, other.gc_seconds, strict=True)),
        )

    def __sub__(self, other: ServerStats) -> ServerStats:
        return ServerStats(
            self.statements - other.statements,
            self.cpu_seconds - other.cpu_seconds,
            tuple(a - b for a, b in zip(self.gc_seconds, other.gc_seconds, strict=True)),
        )


async def _server_stats(client: httpx.AsyncClient) -> ServerStats:
    stats = (await client.get("/bench/stats")).json()
    return ServerStats(
        int(stats["statements"]),
        float(stats["cpu_seconds"]),
        tuple(float(s) for s in stats["gc_seconds"]),
    )


@dataclass(slots=True)
class Result:
    """One endpoint's figures, summed over the measured phases."""

    name: str
    response_bytes: int
    requests: int = 0
    failures: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server: ServerStats = field(default_factory=ServerStats)
    rps_of_rounds: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    def per_request(self, total: float) -> float:
        return total / self.requests if self.requests else 0.0


async def _drive(
    client: httpx.AsyncClient, endpoint: Endpoint, seconds: float, concurrency: int, into: Result
) -> None:
    """Keep `concurrency` requests in flight for `seconds`; add what happened to `into`."""
    latencies: list[float] = []
    failures = 0
    before = await _server_stats(client)
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal failures
        while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS:
            sent = time.perf_counter()
            response = await endpoint.call(client)
            latencies.append(time.perf_counter() - sent)
            if response.status_code != 200:
                failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    into.server = into.server + (await _server_stats(client) - before)
    into.requests += len(latencies)
    into.failures += failures
    into.seconds += elapsed
    into.latencies.extend(latencies)
    into.rps_of_rounds.append(len(latencies) / elapsed)


async def _same_answer(client: httpx.AsyncClient, graphql: Endpoint, plain: Endpoint) -> bool:
    first, second = await asyncio.gather(graphql.call(client), plain.call(client))
    answer: Any = orjson.loads(first.content)
    if "errors" in answer:
        raise RuntimeError(f"the storyboard query failed: {answer['errors']}")
    return bool(answer == orjson.loads(second.content))


async def measure(
    client: httpx.AsyncClient, endpoints: list[Endpoint], settings: Load
) -> list[Result]:
    """Warm every endpoint up, then measure them in turn, round after round, so that whatever
    else the machine does weighs on all of them alike."""
    results = [Result(e.name, len((await e.call(client)).content)) for e in endpoints]
    for endpoint in endpoints:
        await _drive(
            client, endpoint, settings.warmup, settings.concurrency, Result(endpoint.name, 0)
        )
    for _ in range(settings.rounds):
        for endpoint, result in zip(endpoints, results, strict=True):
            await _drive(client, endpoint, settings.seconds, settings.concurrency, result)
    return results


def report(results: list[Result], settings: Load) -> None:
    print(
        f"\n{'endpoint':<10} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>8} {'SQL/req':>8} "
        f"{'bytes':>8} {'CPU ms/req':>11} {'GC ms/req':>10}"
    )
    for r in results:
        print(
            f"{r.name:<10} {r.percentile(0.50):8.1f} {r.percentile(0.95):8.1f} {r.rps:8.1f} "
            f"{r.per_request(r.server.statements):8.2f} {r.response_bytes:8d} "
            f"{r.per_request(r.server.cpu_seconds * 1000):11.1f} "
            f"{r.per_request(sum(r.server.gc_seconds) * 1000):10.1f}"
            + (f"  ({r.failures} failed)" if r.failures else "")
        )
    graphql, plain = (next(r for r in results if r.name == n) for n in ("graphql", "plain"))
    rounds = [g / p for g, p in zip(graphql.rps_of_rounds, plain.rps_of_rounds, strict=True)]
    print(
        f"\nratio GraphQL / plain req/s: {graphql.rps / plain.rps:.2f} (target >= 0.60) "
        f"at concurrency {settings.concurrency}; by round: " + ", ".join(f"{r:.2f}" for r in rounds)
    )
    cpu_ratio = plain.per_request(plain.server.cpu_seconds) / graphql.per_request(
        graphql.server.cpu_seconds
    )
    print(
        f"ratio of server CPU per request, plain / GraphQL: {cpu_ratio:.2f} "
        "(what a CPU-bound server would show, whatever else runs on the machine)"
    )


@dataclass(frozen=True, slots=True)
class Load:
    seconds: float
    warmup: float
    concurrency: int
    rounds: int


async def run(base_url: str, video_pk: int, token: str, settings: Load) -> None:
    video_id = encode_id("Video", video_pk)
    graphql = Endpoint(
        "graphql",
        "POST",
        "/graphql",
        body=orjson.dumps({"query": STORYBOARD, "variables": {"id": video_id}}),
    )
    plain = Endpoint("plain", "GET", "/plain/storyboard", params={"id": video_id})
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=60, headers=headers
    ) as client:
        await _wait_until_up(client)
        same = await _same_answer(client, graphql, plain)
        print(f"GraphQL and plain answers identical: {'yes' if same else 'NO'}")
        results = await measure(client, [graphql, plain], settings)
    report(results, settings)


def dialect(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgres") else "SQLite"


def bench(database_url: str | None, data_dir: Path, args: argparse.Namespace) -> None:
    url = database_url or f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
    started = time.perf_counter()
    video_pk, token = asyncio.run(seed(url, data_dir, args.frames))
    print(
        f"{dialect(url)}: seeded {args.frames} frames x {MESSAGES_PER_FRAME} messages x "
        f"{IMAGES_PER_MESSAGE} images in {time.perf_counter() - started:.1f} s"
    )
    if not args.gc_freeze:
        print("experiment: the server does not call gc.freeze() after start-up")
    load = Load(args.seconds, min(2.0, max(0.5, args.seconds / 3)), args.concurrency, args.rounds)
    with server(url, data_dir, gc_freeze=args.gc_freeze) as base_url:
        asyncio.run(run(base_url, video_pk, token, load))


def on_database(
    args: argparse.Namespace, bench: Callable[[str | None, Path, argparse.Namespace], None]
) -> int:
    """Run `bench` on the database the arguments name (`--database-url`, `--postgres`, or a
    fresh SQLite one), with a temporary data directory."""
    with tempfile.TemporaryDirectory(prefix="storyframe-bench-") as tmp:
        if args.postgres:
            from tests.postgres import postgres_server

            with postgres_server() as postgres_url:
                bench(postgres_url, Path(tmp), args)
        else:
            bench(args.database_url, Path(tmp), args)
    return 0


def load_arguments(module: str, doc: str | None, *, seconds: float) -> argparse.ArgumentParser:
    """The options every load benchmark takes: where its database is, and how it drives the
    endpoints (seconds a round, rounds, requests in flight)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}", description=(doc or "").split("\n\n")[0]
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="seed this database instead of a fresh SQLite one")
    where.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL server"
    )
    parser.add_argument(
        "--seconds", type=float, default=seconds, help="measured seconds per endpoint and round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every endpoint in turn")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = load_arguments("bench.storyboard", __doc__, seconds=4.0)
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames of the video")
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="experiment: the server leaves out gc.freeze() after start-up (serve does it)",
    )
    args = parser.parse_args(argv)
    if not (
        0 < args.seconds <= 600
        and 0 < args.concurrency <= 256
        and 0 < args.rounds <= 20
        and 0 < args.frames <= 1000
    ):
        parser.error(
            "--seconds in (0, 600], --concurrency in [1, 256], --rounds in [1, 20], "
            "--frames in [1, 1000]"
        )
    return on_database(args, bench)


if __name__ == "__main__":
    sys.exit(main())
