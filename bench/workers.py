"""Benchmark: generations through API processes and `storyframe worker` processes on PostgreSQL.

    .venv/bin/python -m bench.workers [--generations 200] [--images 4] [--rounds 1]
                                      [--seconds-per-image 1.0] [--single-rounds 3]

Starts a throwaway PostgreSQL server (tests/postgres.py), migrates it, and starts the fake OpenAI
of the tests on loopback (one image call takes `--seconds-per-image`: previews at 0.3 s and 0.6 s,
the image at the end), then two `storyframe serve` processes with
`GENERATION_JOBS_IN_PROCESS=false`: API A, where a subscriber follows `videoGenerationsUpdated`
over a WebSocket, and API B, which takes the generate mutations. Workers are `storyframe worker`
processes, each running `WORKER_CONCURRENCY=4` generations and 16 image calls at once.

1. **Throughput**, with 1 and then 2 workers (alternating when `--rounds` > 1): `--generations`
   generations of `--images` images are queued through API B, 8 mutations in flight; the clock
   runs from the first mutation sent to the last FINISHED heard on API A. Per scenario it prints
   generations/s and images/s; from each mutation's answer to its generation's first PREVIEW and
   first IMAGE_STORED at the subscriber (p50, p95); and the latency of each IMAGE_STORED from
   the image's row (`createdAt`, written by the worker) to the subscriber on API A (p50, p95).
2. **One generation**: a single generation of `--images` images with one worker whose image
   calls run together (16 at once) against one whose calls run one after another
   (`GENERATION_CONCURRENCY=1`), `--single-rounds` rounds alternating; the wall time from the
   mutation's answer to FINISHED, and the ratio.

It prints figures; it never asserts them. Record them in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.postgres import postgres_server
from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import (
    STORYFRAME,
    Server,
    WorkerProcess,
    running_server,
    running_worker,
    server_environment,
)

SIGN_UP = "mutation($input: SignUpInput!) { signUp(input: $input) { token userErrors { code } } }"
CREATE_PROJECT = 'mutation { createProject(input: {name: "Bench"}) { project { id } } }'
CREATE_VIDEO = (
    'mutation($id: ID!) { createVideo(input: {projectId: $id, name: "V"}) { video { id } } }'
)
CREATE_FRAME = (
    'mutation($id: ID!) { createFrame(input: {videoId: $id, title: "F"}) { frame { id } } }'
)
GENERATE = """
mutation($frame: ID!, $count: Int!) {
  generateFrameImages(input: {frameId: $frame, prompt: "a lighthouse", imageCount: $count}) {
    generation { id }
    userErrors { code message }
  }
}
"""
FOLLOW = """
subscription($id: ID!) {
  videoGenerationsUpdated(videoId: $id) { kind generation { id status } image { createdAt } }
}
"""
MUTATIONS_IN_FLIGHT = 8


@dataclass
class Followed:
    """What the subscriber heard of one generation, on the bench's monotonic clock."""

    answered: float = 0.0
    first_preview: float | None = None
    first_image: float | None = None
    finished: float | None = None
    store_latencies: list[float] = field(default_factory=list)
    """Seconds from each image's row being written to its event reaching the subscriber."""


class Api:
    def __init__(self, server: Server) -> None:
        self.base_url = server.base_url
        self.client = httpx.AsyncClient(base_url=server.base_url, timeout=120)

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _ms(values: list[float]) -> str:
    p50, p95 = percentile(values, 0.5) * 1000, percentile(values, 0.95) * 1000
    return f"p50 {p50:7.0f} ms  p95 {p95:7.0f} ms"


async def _scene(api: Api, token: str) -> tuple[str, str]:
    api.client.headers["Authorization"] = f"Bearer {token}"
    project = (await api.data(CREATE_PROJECT))["createProject"]["project"]["id"]
    video = (await api.data(CREATE_VIDEO, {"id": project}))["createVideo"]["video"]["id"]
    frame = (await api.data(CREATE_FRAME, {"id": video}))["createFrame"]["frame"]["id"]
    return video, frame


async def run_batch(
    listener: Api, sender: Api, token: str, generations: int, images: int
) -> tuple[float, dict[str, Followed]]:
    """Queue the generations through `sender` while a subscriber follows them on `listener`;
    the seconds from the first mutation to the last FINISHED, and what was heard."""
    video, frame = await _scene(sender, token)
    followed: dict[str, Followed] = {}
    url = listener.base_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"], proxy=None) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": FOLLOW, "variables": {"id": video}},
                }
            )
        )
        # The subscription is live once the server answers a ping sent after it.
        await ws.send(json.dumps({"type": "ping"}))
        while json.loads(await ws.recv())["type"] != "pong":
            pass
        done = asyncio.Event()
        finished = 0

        async def listen() -> None:
            nonlocal finished
            async for raw in ws:
                now = time.monotonic()
                wall = time.time()
                message = json.loads(raw)
                if message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                    continue
                if message["type"] != "next":
                    continue
                event = message["payload"]["data"]["videoGenerationsUpdated"]
                seen = followed.setdefault(event["generation"]["id"], Followed())
                if event["kind"] == "PREVIEW" and seen.first_preview is None:
                    seen.first_preview = now
                elif event["kind"] == "IMAGE_STORED":
                    seen.first_image = seen.first_image or now
                    created = datetime.fromisoformat(event["image"]["createdAt"])
                    seen.store_latencies.append(wall - created.timestamp())
                elif event["kind"] == "FINISHED":
                    seen.finished = now
                    finished += 1
                    if finished == generations:
                        done.set()
                        return

        listening = asyncio.create_task(listen())
        slots = asyncio.Semaphore(MUTATIONS_IN_FLIGHT)
        started = time.monotonic()

        async def generate() -> None:
            async with slots:
                data = await sender.data(GENERATE, {"frame": frame, "count": images})
            payload = data["generateFrameImages"]
            assert payload["userErrors"] == [], payload["userErrors"]
            followed.setdefault(payload["generation"]["id"], Followed()).answered = time.monotonic()

        await asyncio.gather(*(generate() for _ in range(generations)))
        await asyncio.wait_for(done.wait(), 1800)
        elapsed = time.monotonic() - started
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    return elapsed, followed


@contextmanager
def workers(
    count: int, data: Path, logs: Path, env: dict[str, str]
) -> Iterator[list[WorkerProcess]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                running_worker(data, logs / f"worker-{time.monotonic_ns()}.log", **env)
            )
            for _ in range(count)
        ]


def report_batch(label: str, elapsed: float, followed: dict[str, Followed], images: int) -> float:
    heard = list(followed.values())
    rate = len(heard) / elapsed
    to_preview = [f.first_preview - f.answered for f in heard if f.first_preview is not None]
    to_image = [f.first_image - f.answered for f in heard if f.first_image is not None]
    store = [s for f in heard for s in f.store_latencies]
    print(
        f"{label}: {len(heard)} generations in {elapsed:6.1f} s: {rate:5.2f} generations/s, "
        f"{rate * images:6.2f} images/s"
    )
    print(f"  answer -> first preview   {_ms(to_preview)}")
    print(f"  answer -> first image     {_ms(to_image)}")
    print(f"  image stored -> event     {_ms(store)}   ({len(store)} images)")
    return rate


async def single(listener: Api, sender: Api, token: str, images: int) -> Followed:
    _, followed = await run_batch(listener, sender, token, 1, images)
    (one,) = followed.values()
    return one


async def main_async(args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        postgres = stack.enter_context(postgres_server())
        database = postgres.rsplit("/", 1)[0] + "/storyframe_bench"
        await _create_database(postgres, database)
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="storyframe-bench-")))
        fake = stack.enter_context(FakeOpenAI())
        fake.partial_delays = [0.3, 0.3]
        fake.seconds_per_image = max(0.0, args.seconds_per_image - 0.6)
        env = {
            "DATABASE_URL": database,
            "OPENAI_API_KEY": fake.api_key,
            "OPENAI_BASE_URL": fake.base_url,
            "GENERATION_JOBS_IN_PROCESS": "false",
            "GENERATION_RUNNING_PER_USER": "100",
            "GENERATION_RUNNING_TOTAL": "100",
            "GENERATION_CONCURRENCY": "16",
            "WORKER_CONCURRENCY": "4",
        }
        migrate = await asyncio.to_thread(
            subprocess.run,
            [str(STORYFRAME), "migrate"],
            env=server_environment(root / "data", 4000, **env),
            capture_output=True,
            text=True,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        a_server, _ = stack.enter_context(running_server(root / "data", root / "api-a.log", **env))
        b_server, _ = stack.enter_context(running_server(root / "data", root / "api-b.log", **env))
        listener, sender = Api(a_server), Api(b_server)
        signed = await sender.data(
            SIGN_UP,
            {"input": {"email": "bench@storyframe.test", "password": "lighthouse keepers at dusk"}},
        )
        assert signed["signUp"]["userErrors"] == [], signed
        token = signed["signUp"]["token"]
        listener.client.headers["Authorization"] = f"Bearer {token}"
        worker_env = {**env, "PUBLIC_URL": a_server.base_url}

        print(
            f"{args.generations} generations of {args.images} images; image calls of "
            f"{args.seconds_per_image} s (previews at 0.3 s and 0.6 s); workers run 4 "
            "generations and 16 image calls each"
        )
        rates: dict[int, list[float]] = {1: [], 2: []}
        for round_ in range(args.rounds):
            for count in (1, 2) if round_ % 2 == 0 else (2, 1):
                with workers(count, root / "data", root, worker_env):
                    elapsed, followed = await run_batch(
                        listener, sender, token, args.generations, args.images
                    )
                rates[count].append(
                    report_batch(
                        f"round {round_ + 1}, {count} worker(s)", elapsed, followed, args.images
                    )
                )
        one, two = statistics.median(rates[1]), statistics.median(rates[2])
        print(f"throughput, 2 workers / 1 worker: {two / one:.2f}x (median of {args.rounds})")

        together: list[float] = []
        apart: list[float] = []
        for round_ in range(args.single_rounds):
            for concurrency in ("16", "1") if round_ % 2 == 0 else ("1", "16"):
                with workers(
                    1, root / "data", root, {**worker_env, "GENERATION_CONCURRENCY": concurrency}
                ):
                    run = await single(listener, sender, token, args.images)
                assert run.finished is not None
                assert run.first_preview is not None
                assert run.first_image is not None
                seconds = run.finished - run.answered
                (together if concurrency == "16" else apart).append(seconds)
                print(
                    f"one generation of {args.images}, calls "
                    f"{'together' if concurrency == '16' else 'one after another'}: "
                    f"{seconds:5.2f} s (first preview {run.first_preview - run.answered:4.2f} s, "
                    f"first image {run.first_image - run.answered:4.2f} s)"
                )
        ratio = statistics.median(together) / statistics.median(apart)
        print(
            f"one generation, together / one after another: {ratio:.2f} "
            f"(median of {args.single_rounds})"
        )
        await listener.client.aclose()
        await sender.client.aclose()


async def _create_database(server_url: str, url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from storyframe.db.engine import create_engine

    admin = create_engine(server_url)
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f'CREATE DATABASE "{make_url(url).database}"'))
    finally:
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds-per-image", type=float, default=1.0)
    parser.add_argument("--single-rounds", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
