"""Benchmark: one generation of several images against a fake OpenAI that takes a fixed time.

    .venv/bin/python -m bench.generation [--latency S] [--rounds R] [--count N]
                                         [--image-side PX]

Starts the fake OpenAI server of the tests (`tests.support.fake_openai.FakeOpenAI`, real HTTP on
loopback, every API answer delayed by `--latency` seconds, one request for n images delayed
once) and the app of `storyframe.app.create_app` in process, driven through
`httpx.ASGITransport` with the real OpenAI SDK talking to the fake. SQLite in a temporary data
directory (migrated), local blob storage. Signs up through `signUp`, creates a project, a video
and a frame per scenario through the API, then sends `generateFrameImages` with
`imageCount: --count` in three scenarios, one app each, alternating round after round:

- `n`: the default GPT image model (`gpt-image-2.6-flare`), which takes `n`: one call for all
  the images;
- `concurrent`: a model the catalog does not know (`compatible-image-model`), one image a call,
  the calls in flight together (`generation_concurrency=4`);
- `sequential`: the same model with `generation_concurrency=1`, one call after another (what the
  old system's loop did): the baseline.

For each mutation it prints the wall time the client measured, the server's `duration_ms` and
`first_image_ms` (from the `generation finished` record of the `storyframe.generation` logger),
the images completed, the fake's most requests in flight and its image calls, and where the time
went, from wrappers around the generator's provider and blob storage: before the first image
call, the span of the calls, storing (last call answered to last image stored) and recording
(last image stored to the answer). Then the medians and the ratios of sequential to the others.
The fake answers 64x64 PNGs; `--image-side` makes it answer distinct PNGs of that side instead,
to weigh storing and thumbnailing at realistic sizes. It prints figures; it never asserts them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import logging
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import orjson
from PIL import Image
from pydantic import SecretStr
from starlette.applications import Starlette

from storyframe.db.engine import create_engine
from storyframe.db.migrate import upgrade
from storyframe.domain.image_provider import (
    CallResult,
    Description,
    ImageCall,
    ImageProvider,
    PartialSink,
    Reference,
    RemoteModel,
)
from storyframe.domain.model_catalogue import image_model
from storyframe.domain.ports import Blob, BlobStorage
from storyframe.runtime import Runtime, build_provider, build_storage
from storyframe.settings import Settings
from tests.support.apps import build_app, settings_with
from tests.support.fake_openai import FakeOpenAI

BASE_URL = "http://storyframe.bench"
GPT_IMAGE_MODEL = "gpt-image-2.6-flare"
UNKNOWN_MODEL = "compatible-image-model"
PROMPT = "a lighthouse on a cliff at dusk, rain coming in from the sea, wide shot"

SIGN_UP = (
    "mutation SignUp($input: SignUpInput!) { signUp(input: $input) { token "
    "userErrors { message } } }"
)
CREATE_PROJECT = (
    "mutation CreateProject($input: CreateProjectInput!) { createProject(input: $input) { "
    "project { id } userErrors { message } } }"
)
CREATE_VIDEO = (
    "mutation CreateVideo($input: CreateVideoInput!) { createVideo(input: $input) { "
    "video { id } userErrors { message } } }"
)
CREATE_FRAME = (
    "mutation CreateFrame($input: CreateFrameInput!) { createFrame(input: $input) { "
    "frame { id } userErrors { message } } }"
)
GENERATE = (
    "mutation Generate($input: GenerateFrameImagesInput!) { generateFrameImages(input: $input) "
    "{ message { id finalPrompt images { id url } } generation { id status model "
    "requestedCount completedCount durationMs } userErrors { code message } } }"
)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    model: str
    concurrency: int
    what: str


SCENARIOS = (
    Scenario("n", GPT_IMAGE_MODEL, 4, "one call with n"),
    Scenario("concurrent", UNKNOWN_MODEL, 4, "one-image calls, 4 in flight"),
    Scenario("sequential", UNKNOWN_MODEL, 1, "one-image calls, one at a time"),
)


# --- instrumentation -------------------------------------------------------------------------


class TimedProvider:
    """Delegates to the app's provider and notes when each image call starts and ends
    (`time.monotonic()`, as the generation service measures)."""

    def __init__(self, inner: ImageProvider) -> None:
        self.inner = inner
        self.calls: list[tuple[float, float]] = []

    @property
    def placeholder(self) -> bool:
        return self.inner.placeholder

    @property
    def name(self) -> str:
        return self.inner.name

    async def generate(self, call: ImageCall, on_partial: PartialSink | None = None) -> CallResult:
        started = time.monotonic()
        try:
            return await self.inner.generate(call, on_partial)
        finally:
            self.calls.append((started, time.monotonic()))

    async def describe_references(self, images: Sequence[Reference], model: str) -> Description:
        return await self.inner.describe_references(images, model)

    async def analyze(self, images: Sequence[Reference], question: str, model: str) -> Description:
        return await self.inner.analyze(images, question, model)

    async def complete(self, prompt: str, model: str) -> Description:
        return await self.inner.complete(prompt, model)

    async def models(self) -> list[RemoteModel]:
        return await self.inner.models()

    async def aclose(self) -> None:
        await self.inner.aclose()


class TimedStorage:
    """Delegates to the generator's blob storage and notes when each `put` ends: an image is
    stored (written to a temporary file, checked and thumbnailed, then put) when its put ends."""

    def __init__(self, inner: BlobStorage) -> None:
        self.inner = inner
        self.puts: list[float] = []

    async def put(
        self, source: Path, *, checksum: str, content_type: str, thumbnail: bytes
    ) -> Blob:
        try:
            return await self.inner.put(
                source, checksum=checksum, content_type=content_type, thumbnail=thumbnail
            )
        finally:
            self.puts.append(time.monotonic())

    async def put_file(self, source: Path, *, checksum: str, extension: str) -> Blob:
        return await self.inner.put_file(source, checksum=checksum, extension=extension)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def keys(self) -> list[str]:
        return await self.inner.keys()

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    async def read(self, key: str, *, url: str | None = None) -> bytes:
        return await self.inner.read(key, url=url)


class FinishedRecords(logging.Handler):
    """Keeps the `generation finished` records of the `storyframe.generation` logger."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "generation finished":
            self.records.append(record)


# --- the app ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Stack:
    """One app (its own settings, generator and semaphore) and a client of it."""

    scenario: Scenario
    app: Starlette
    client: httpx.AsyncClient
    provider: TimedProvider
    storage: TimedStorage
    frame_id: str = ""

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime


def start(base: Settings, scenario: Scenario, timeout: float) -> Stack:
    settings = settings_with(
        base, openai_image_model=scenario.model, generation_concurrency=scenario.concurrency
    )
    provider = TimedProvider(build_provider(settings))
    storage = TimedStorage(build_storage(settings))
    app = build_app(settings, provider=provider, storage=storage)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=timeout
    )
    return Stack(scenario, app, client, provider, storage)


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = orjson.dumps({"query": query, "variables": variables})
    response = await client.post("/graphql", content=body, headers=headers)
    answer: Any = orjson.loads(response.content)
    if response.status_code != 200 or answer.get("errors"):
        raise RuntimeError(f"GraphQL request failed ({response.status_code}): {answer}")
    (payload,) = answer["data"].values()
    if payload.get("userErrors"):
        raise RuntimeError(f"refused: {payload['userErrors']}")
    return payload


async def seed(stacks: list[Stack]) -> str:
    """Sign up, create a project and a video, and a frame for each scenario: the token."""
    client = stacks[0].client
    credentials = {"email": "generator@storyframe.test", "password": "four images at the same time"}
    token: str = (await graphql(client, SIGN_UP, {"input": credentials}))["token"]
    project = await graphql(client, CREATE_PROJECT, {"input": {"name": "Generation"}}, token)
    video = await graphql(
        client,
        CREATE_VIDEO,
        {"input": {"projectId": project["project"]["id"], "name": "Bench"}},
        token,
    )
    for stack in stacks:
        frame = await graphql(
            client,
            CREATE_FRAME,
            {"input": {"videoId": video["video"]["id"], "title": stack.scenario.name}},
            token,
        )
        stack.frame_id = frame["frame"]["id"]
    return token


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measurement:
    scenario: str
    wall_ms: float
    duration_ms: float
    first_image_ms: float
    completed: int
    status: str
    max_in_flight: int
    image_calls: int
    before_calls_ms: float
    """From the mutation sent to the first image call (auth, message and generation saved,
    the generation read back)."""
    calls_ms: float
    """From the first image call sent to the last one answered."""
    storing_ms: float
    """From the last image call answered to the last image stored (for `n`, storing all of
    them: temporary file, decoding and checks, SHA-256, the WebP thumbnail, the blob put)."""
    recording_ms: float
    """From the last image stored to the answer of the mutation (the images, message and
    generation recorded in the database, the GraphQL answer)."""
    call_ms: float
    """The mean time of one image call, as the service awaits it (the SDK and the fake)."""


async def generate(
    stack: Stack, token: str, count: int, fake: FakeOpenAI, records: FinishedRecords
) -> Measurement:
    with fake.lock:
        fake.max_in_flight = 0
    calls_before = len(fake.requests_to("images"))
    records.records.clear()
    stack.provider.calls.clear()
    stack.storage.puts.clear()
    variables = {"input": {"frameId": stack.frame_id, "prompt": PROMPT, "imageCount": count}}
    sent = time.monotonic()
    payload = await graphql(stack.client, GENERATE, variables, token)
    answered = time.monotonic()
    (record,) = records.records
    facts = vars(record)
    first_image = facts["first_image_ms"]
    calls = stack.provider.calls
    first_call = min((start for start, _ in calls), default=answered)
    last_answer = max((end for _, end in calls), default=answered)
    last_put = max(stack.storage.puts, default=last_answer)
    return Measurement(
        scenario=stack.scenario.name,
        wall_ms=(answered - sent) * 1000,
        duration_ms=float(facts["duration_ms"]),
        first_image_ms=float("nan") if first_image is None else float(first_image),
        completed=int(payload["generation"]["completedCount"]),
        status=str(facts["status"]),
        max_in_flight=fake.max_in_flight,
        image_calls=len(fake.requests_to("images")) - calls_before,
        before_calls_ms=(first_call - sent) * 1000,
        calls_ms=(last_answer - first_call) * 1000,
        storing_ms=(last_put - last_answer) * 1000,
        recording_ms=(answered - last_put) * 1000,
        call_ms=statistics.fmean(end - start for start, end in calls) * 1000 if calls else 0.0,
    )


HEADER = (
    f"{'round':>5} {'scenario':<11} {'wall ms':>8} {'server ms':>9} {'1st image':>9} "
    f"{'done':>5} {'in flight':>9} {'calls':>5} {'before':>7} {'calls ms':>8} {'storing':>7} "
    f"{'recording':>9} {'ms/call':>7}"
)


def row(label: str, m: Measurement) -> str:
    return (
        f"{label:>5} {m.scenario:<11} {m.wall_ms:8.0f} {m.duration_ms:9.0f} "
        f"{m.first_image_ms:9.0f} {m.completed:5d} {m.max_in_flight:9d} {m.image_calls:5d} "
        f"{m.before_calls_ms:7.1f} {m.calls_ms:8.0f} {m.storing_ms:7.1f} {m.recording_ms:9.1f} "
        f"{m.call_ms:7.0f}" + ("" if m.status == "SUCCEEDED" else f"  {m.status}")
    )


@dataclass(slots=True)
class Summary:
    scenario: Scenario
    measurements: list[Measurement] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(float(getattr(m, name)) for m in self.measurements)

    def floor_ms(self, latency: float, count: int) -> float:
        """The latency alone: calls one after another when the semaphore makes them wait."""
        calls = -(-count // image_model(self.scenario.model).max_images_per_call)
        return -(-calls // self.scenario.concurrency) * latency * 1000


def _ratios(name: str, slow: Summary, fast: Summary) -> str:
    by_round = ", ".join(
        f"{s.wall_ms / f.wall_ms:.2f}"
        for s, f in zip(slow.measurements, fast.measurements, strict=True)
    )
    ratio = slow.median("wall_ms") / fast.median("wall_ms")
    return f"{name} (wall): {ratio:.2f}; by round: {by_round}"


def report(summaries: list[Summary], latency: float, count: int) -> None:
    print(
        f"\nmedians over {len(summaries[0].measurements)} rounds, {count} images, "
        f"{latency:.2f} s per image call:"
    )
    print(
        f"{'scenario':<11} {'what':<31} {'wall ms':>8} {'server ms':>9} {'1st image':>9} "
        f"{'floor ms':>8} {'over floor':>10}"
    )
    for s in summaries:
        floor = s.floor_ms(latency, count)
        print(
            f"{s.scenario.name:<11} {s.scenario.what:<31} {s.median('wall_ms'):8.0f} "
            f"{s.median('duration_ms'):9.0f} {s.median('first_image_ms'):9.0f} {floor:8.0f} "
            f"{s.median('wall_ms') - floor:+10.0f}"
        )
    print(
        f"\n{'scenario':<11} {'before calls':>12} {'calls span':>10} {'storing':>8} "
        f"{'recording':>9} {'ms/call':>8} {'call - latency':>14} {'wall - server':>13}"
    )
    for s in summaries:
        call = s.median("call_ms")
        print(
            f"{s.scenario.name:<11} {s.median('before_calls_ms'):12.1f} "
            f"{s.median('calls_ms'):10.0f} {s.median('storing_ms'):8.1f} "
            f"{s.median('recording_ms'):9.1f} {call:8.0f} {call - latency * 1000:+14.1f} "
            f"{s.median('wall_ms') - s.median('duration_ms'):13.1f}"
        )
    by_name = {s.scenario.name: s for s in summaries}
    n, concurrent, sequential = (by_name[name] for name in ("n", "concurrent", "sequential"))
    print()
    print(_ratios("sequential / n", sequential, n))
    print(_ratios("sequential / concurrent", sequential, concurrent))
    print(
        "time to the first stored image (median ms): "
        + ", ".join(f"{s.scenario.name} {s.median('first_image_ms'):.0f}" for s in summaries)
    )


# --- bigger images ---------------------------------------------------------------------------


def photo_like_png(side: int) -> bytes:
    """A side x side PNG that compresses about as a generated picture does: smooth gradients
    under Gaussian noise."""
    noise = Image.effect_noise((side, side), 24)
    gradient = Image.linear_gradient("L").resize((side, side))
    image = Image.merge("RGB", (noise, gradient, gradient.transpose(Image.Transpose.ROTATE_90)))
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def with_text_chunk(png: bytes, serial: int) -> bytes:
    """The PNG with a tEXt chunk before IEND: the same picture, different bytes (so the
    content-addressed storage stores every image)."""
    body = b"tEXt" + b"serial\x00" + str(serial).encode()
    chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    return png[:-12] + chunk + png[-12:]


def bigger_images(png: bytes) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """A `rewrite` for the fake: every image it returns becomes a distinct copy of `png`."""
    serials = itertools.count(1)
    lock = threading.Lock()

    def rewrite(endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        if endpoint not in ("generations", "edits"):
            return payload
        for item in payload.get("data", []):
            with lock:
                serial = next(serials)
            item["b64_json"] = base64.b64encode(with_text_chunk(png, serial)).decode("ascii")
        return payload

    return rewrite


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    latency: float
    rounds: int
    count: int
    image_side: int


async def run(data_dir: Path, fake: FakeOpenAI, plan: Plan) -> None:
    database_url = f"sqlite+aiosqlite:///{data_dir / 'storyframe.db'}"
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    sequential_seconds = plan.latency * plan.count
    base = Settings(
        database_url=database_url,
        data_dir=data_dir,
        graphiql=False,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        openai_api_key=SecretStr(fake.api_key),
        openai_base_url=fake.base_url,
        openai_timeout_seconds=max(180.0, plan.latency * 3),
        request_timeout_seconds=max(30.0, sequential_seconds * 2 + 10),
    )
    records = FinishedRecords()
    logger = logging.getLogger("storyframe.generation")
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    timeout = max(60.0, sequential_seconds * 3 + 30)
    if plan.image_side:
        png = photo_like_png(plan.image_side)
        fake.rewrite = bigger_images(png)
        print(f"images: {plan.image_side}x{plan.image_side} PNGs of {len(png):,} bytes")
    else:
        print("images: the fake's own 64x64 PNGs")
    stacks = [start(base, scenario, timeout) for scenario in SCENARIOS]
    try:
        token = await seed(stacks)
        fake.latency = 0.0  # warm-up: imports, the SDK's client and connections, first queries
        for stack in stacks:
            await generate(stack, token, plan.count, fake, records)
        fake.latency = plan.latency
        summaries = [Summary(stack.scenario) for stack in stacks]
        print(HEADER)
        for number in range(1, plan.rounds + 1):
            for stack, summary in zip(stacks, summaries, strict=True):
                measurement = await generate(stack, token, plan.count, fake, records)
                summary.measurements.append(measurement)
                print(row(str(number), measurement), flush=True)
    finally:
        for stack in stacks:
            await stack.client.aclose()
            await stack.runtime.aclose()
        logger.removeHandler(records)
        logger.propagate = True
    report(summaries, plan.latency, plan.count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generation", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--latency", type=float, default=2.0, help="seconds every call to the fake takes"
    )
    parser.add_argument("--rounds", type=int, default=3, help="generations per scenario")
    parser.add_argument("--count", type=int, default=4, help="imageCount (1 to 4)")
    parser.add_argument(
        "--image-side",
        type=int,
        default=0,
        help="answer N x N PNGs instead of the fake's 64 x 64 ones (0: the fake's)",
    )
    args = parser.parse_args(argv)
    if not (
        0 <= args.latency <= 60
        and 1 <= args.rounds <= 100
        and 1 <= args.count <= 4
        and (args.image_side == 0 or 16 <= args.image_side <= 2048)
    ):
        parser.error(
            "--latency in [0, 60], --rounds in [1, 100], --count in [1, 4], "
            "--image-side 0 or in [16, 2048]"
        )
    plan = Plan(args.latency, args.rounds, args.count, args.image_side)
    print(
        f"{plan.count} images a generation, {plan.latency:.2f} s per image call, "
        f"{plan.rounds} rounds; scenarios: "
        + "; ".join(f"{s.name} ({s.model}, concurrency {s.concurrency})" for s in SCENARIOS)
    )
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="storyframe-bench-") as tmp,
        FakeOpenAI() as fake,
    ):
        asyncio.run(run(Path(tmp), fake, plan))
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
