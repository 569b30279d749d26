"""Benchmark: `GET /media/<key>` against Starlette's StaticFiles serving the same file.

    .venv/bin/python -m bench.media [--kb K] [--seconds N] [--rounds R] [--concurrency C]

Starts `storyframe serve` (as `bench.uploads` does: SQLite in a temporary data directory) and
stores one JPEG of noise of about `--kb` KB through `uploadImages`. Then starts the baseline, a
bare Starlette app with `Mount("/static", StaticFiles(directory=<the server's media directory>))`
(`create_static_app` below), under uvicorn with its defaults (uvloop, httptools) in a second
subprocess on another loopback port. Both serve the very same file. It drives, in turn and round
after round, with httpx keeping `--concurrency` requests in flight for `--seconds`:

- `GET` of the whole file from each server (200);
- the same `GET` with `If-None-Match: <the ETag that server sent>` (304, no body);

and prints requests/s, p50/p95 latency, the server process's CPU time per request (utime+stime
from /proc/<pid>/stat, which the client's own CPU does not blur) and the ratio Storyframe ÷
StaticFiles (target >= 0.8). It prints figures; it never asserts them.

`create_static_app` reads the directory from STORYFRAME_BENCH_STATIC_DIR; run it alone with
`uvicorn bench.media:create_static_app --factory`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from bench.uploads import (
    MB,
    ROOT,
    free_port,
    noise_jpeg,
    sign_up_with_project,
    storyframe_server,
    upload,
    wait_until_up,
)

STATIC_DIR = "STORYFRAME_BENCH_STATIC_DIR"
MAX_REQUESTS = 500_000  # per phase, whatever the duration: loops stay bounded in count too
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def create_static_app() -> Starlette:
    """The baseline: StaticFiles over the directory named by STORYFRAME_BENCH_STATIC_DIR."""
    directory = os.environ[STATIC_DIR]
    return Starlette(routes=[Mount("/static", StaticFiles(directory=directory))])


@contextmanager
def static_server(directory: Path) -> Iterator[tuple[str, int]]:
    """`create_static_app` under uvicorn in a subprocess on a free loopback port: its base URL
    and process id."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.media:create_static_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    env = {**os.environ, STATIC_DIR: str(directory)}
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    client: httpx.AsyncClient
    pid: int
    path: str
    headers: dict[str, str] | None
    status: int


@dataclass(slots=True)
class Result:
    name: str
    requests: int = 0
    failures: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    rps_of_rounds: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu * 1000 / self.requests if self.requests else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def drive(target: Target, seconds: float, concurrency: int, into: Result) -> None:
    """Keep `concurrency` requests in flight for `seconds`; add what happened to `into`."""
    latencies: list[float] = []
    failures = 0
    cpu_before = cpu_seconds(target.pid)
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal failures
        while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS:
            sent = time.perf_counter()
            response = await target.client.get(target.path, headers=target.headers)
            latencies.append(time.perf_counter() - sent)
            if response.status_code != target.status:
                failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    into.cpu += cpu_seconds(target.pid) - cpu_before
    into.requests += len(latencies)
    into.failures += failures
    into.seconds += elapsed
    into.latencies.extend(latencies)
    into.rps_of_rounds.append(len(latencies) / elapsed)


@dataclass(frozen=True, slots=True)
class Load:
    seconds: float
    warmup: float
    rounds: int
    concurrency: int


async def compare(pair: tuple[Target, Target], load: Load) -> tuple[Result, Result]:
    """Warm both up, then measure them in turn, round after round."""
    for target in pair:
        await drive(target, load.warmup, load.concurrency, Result(target.name))
    results = (Result(pair[0].name), Result(pair[1].name))
    for _ in range(load.rounds):
        for target, result in zip(pair, results, strict=True):
            await drive(target, load.seconds, load.concurrency, result)
    return results


def report(title: str, results: tuple[Result, Result], concurrency: int) -> None:
    print(f"\n{title}, concurrency {concurrency}")
    print(f"{'server':<14} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'CPU ms/req':>10}")
    for r in results:
        print(
            f"{r.name:<14} {r.rps:8.0f} {r.percentile(0.5):7.2f} {r.percentile(0.95):7.2f} "
            f"{r.cpu_ms_per_request:10.3f}" + (f"  ({r.failures} failed)" if r.failures else "")
        )
    ours, theirs = results
    ratio = ours.rps / theirs.rps if theirs.rps else 0.0
    rounds = [a / b for a, b in zip(ours.rps_of_rounds, theirs.rps_of_rounds, strict=True)]
    cpu = theirs.cpu_ms_per_request / ours.cpu_ms_per_request if ours.cpu_ms_per_request else 0.0
    print(
        f"ratio Storyframe / StaticFiles req/s: {ratio:.2f} (target >= 0.8): "
        f"{'met' if ratio >= 0.8 else 'NOT met'}; by round: "
        + ", ".join(f"{r:.2f}" for r in rounds)
    )
    print(f"ratio of server CPU per request, StaticFiles / Storyframe: {cpu:.2f}")


async def store_image(base_url: str, size: int) -> str:
    """Sign up, create a project and upload one JPEG of about `size` bytes: its storage key."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        await wait_until_up(client)
        token, project_id = await sign_up_with_project(client)
        image = await upload(client, token, project_id, noise_jpeg(size))
    url: str = image["url"]
    return url.split("/media/", 1)[1]


async def run(ours: tuple[str, int], theirs: tuple[str, int], key: str, load: Load) -> None:
    limits = httpx.Limits(
        max_connections=load.concurrency, max_keepalive_connections=load.concurrency
    )
    async with (
        httpx.AsyncClient(base_url=ours[0], limits=limits, timeout=60) as our_client,
        httpx.AsyncClient(base_url=theirs[0], limits=limits, timeout=60) as their_client,
    ):
        await wait_until_up(their_client, f"/static/{key}")
        our_path, their_path = f"/media/{key}", f"/static/{key}"
        first, second = await our_client.get(our_path), await their_client.get(their_path)
        same = first.content == second.content
        print(
            f"file: {key} ({len(first.content):,} bytes); same bytes from both: "
            f"{'yes' if same else 'NO'}"
        )
        for response, name in ((first, "Storyframe"), (second, "StaticFiles")):
            wanted = ("content-type", "content-length", "etag", "cache-control", "last-modified")
            shown = ", ".join(
                f"{h}: {response.headers[h]}" for h in wanted if h in response.headers
            )
            print(f"  {name}: {response.status_code}; {shown}")
        full = (
            Target("Storyframe", our_client, ours[1], our_path, None, 200),
            Target("StaticFiles", their_client, theirs[1], their_path, None, 200),
        )
        cached = (
            Target(
                "Storyframe",
                our_client,
                ours[1],
                our_path,
                {"If-None-Match": first.headers["etag"]},
                304,
            ),
            Target(
                "StaticFiles",
                their_client,
                theirs[1],
                their_path,
                {"If-None-Match": second.headers["etag"]},
                304,
            ),
        )
        for target in (*full, *cached):  # each answers as it should before it is timed
            response = await target.client.get(target.path, headers=target.headers)
            if response.status_code != target.status:
                raise RuntimeError(
                    f"{target.name} {target.path}: {response.status_code}, not {target.status}"
                )
        full_results = await compare(full, load)
        cached_results = await compare(cached, load)
    report(f"GET, 200 with {len(first.content) / MB:.2f} MB", full_results, load.concurrency)
    report("GET with If-None-Match, 304", cached_results, load.concurrency)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.media", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kb", type=int, default=500, help="size of the stored JPEG, KB")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="measured seconds per server and round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both servers in turn")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    args = parser.parse_args(argv)
    if not (
        0 < args.kb <= 20_000
        and 0 < args.seconds <= 600
        and 0 < args.rounds <= 20
        and 0 < args.concurrency <= 256
    ):
        parser.error(
            "--kb in [1, 20000], --seconds in (0, 600], --rounds in [1, 20], "
            "--concurrency in [1, 256]"
        )
    load = Load(args.seconds, min(1.0, args.seconds / 3), args.rounds, args.concurrency)
    with (
        tempfile.TemporaryDirectory(prefix="storyframe-bench-") as tmp,
        storyframe_server(Path(tmp)) as server,
    ):
        key = asyncio.run(store_image(server.base_url, args.kb * 1000))
        with static_server(server.data_dir / "media") as (static_url, static_pid):
            asyncio.run(run((server.base_url, server.pid), (static_url, static_pid), key, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
