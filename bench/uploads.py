"""Benchmark: image uploads (`uploadImages`, multipart) through the real server, and its memory.

    .venv/bin/python -m bench.uploads [--count N] [--concurrency C] [--small-mb S] [--large-mb L]
                                      [--large-count K]
    .venv/bin/python -m bench.uploads --decodes [--png-side 7071] [--concurrency 4] [--rounds 2]

Starts `storyframe serve` (the CLI itself: SQLite in a temporary data directory, migrated on
start, `gc.freeze()` after start-up) in a subprocess on a free loopback port, signs up through
`signUp`, creates a project with `createProject`, then uploads into the project's gallery with
the GraphQL multipart request spec: `--count` JPEGs of about `--small-mb` MB one after the other,
the same again with `--concurrency` uploads in flight, then `--large-count` JPEG(s) of about
`--large-mb` MB (under the server's `max_image_bytes`, 20 MiB by default). The JPEGs are random
noise (which compresses badly), and every upload carries different bytes (a JPEG comment with a
serial number), so the content-addressed storage writes every one of them.

A sampler thread reads the server process's VmRSS from /proc/<pid>/status every few
milliseconds, and the kernel's own peak (VmHWM, reset through /proc/<pid>/clear_refs before
each phase where the kernel allows it) catches what the sampler misses. It prints throughput
(MB/s, uploads/s), latency, baseline RSS, peak RSS, peak growth and growth ÷ the largest file
(target < 2). It prints figures; it never asserts them.

With `--decodes` it measures the bound on images decoded at once (`MAX_CONCURRENT_DECODES`)
instead: a PNG of `--png-side` x `--png-side` pixels that compresses to about 160 KB (a flat
colour with a few rectangles) but decodes to about 200 MB, uploaded `--concurrency` at a time
for `--rounds` rounds, against a server with the default limit (2) and against one without a
limit (64), each started afresh; it prints the peak RSS of each round, the RSS after it, and
their ratios, limit ÷ no limit.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
MIB = 1024 * 1024
STARTUP_SECONDS = 30.0
SAMPLE_SECONDS = 0.005
DEFAULT_MAX_IMAGE_BYTES = 20 * MIB  # storyframe.settings.Settings.max_image_bytes

SIGN_UP = (
    "mutation SignUp($input: SignUpInput!) { signUp(input: $input) { token "
    "userErrors { message } } }"
)
CREATE_PROJECT = (
    "mutation CreateProject($input: CreateProjectInput!) { createProject(input: $input) { "
    "project { id } userErrors { message } } }"
)
UPLOAD_IMAGES = (
    "mutation Upload($input: UploadImagesInput!) { uploadImages(input: $input) { "
    "images { id url byteSize width height } userErrors { message code } } }"
)


# --- images ----------------------------------------------------------------------------------


def noise_jpeg(target_bytes: int, *, limit: int | None = None, quality: int = 95) -> bytes:
    """A 4:3 JPEG of random noise of about `target_bytes` (and at most `limit`): noise at a
    high quality compresses badly, so the size follows the pixel count; a few encodings home in.
    """
    ceiling = limit if limit is not None else target_bytes * 2
    pixels = target_bytes / 1.6  # a first guess, bytes per pixel at quality 95 without subsampling
    best = b""
    for _ in range(6):
        width = max(16, int((pixels * 4 / 3) ** 0.5))
        height = max(16, width * 3 // 4)
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, subsampling=0)
        data = buffer.getvalue()
        if len(data) <= ceiling and abs(len(data) - target_bytes) < abs(len(best) - target_bytes):
            best = data
        if abs(len(data) - target_bytes) <= target_bytes * 0.02 and len(data) <= ceiling:
            break
        pixels *= target_bytes / len(data)
    if not best:
        raise RuntimeError(f"could not make a JPEG of about {target_bytes} bytes")
    return best


def sparse_png(side: int) -> bytes:
    """A PNG of side x side pixels that compresses very well (a flat colour with a dozen
    rectangles: about 160 KB at 7071 px) yet decodes to about 4 bytes a pixel."""
    image = Image.new("RGB", (side, side), (236, 228, 210))
    draw = ImageDraw.Draw(image)
    box = max(1, side // 10)
    for k in range(12):
        x, y = (k * 613) % max(1, side - box), (k * 1187) % max(1, side - box)
        draw.rectangle((x, y, x + box, y + box * 5 // 7), fill=(40 + 15 * k, 90, 160))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def with_png_serial(png: bytes, serial: int) -> bytes:
    """The same picture with other bytes: a tEXt chunk carrying `serial` after the IHDR chunk."""
    body = b"tEXt" + b"Comment\0" + f"storyframe bench upload {serial:08d}".encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    end_of_ihdr = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, data and CRC
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def with_serial(jpeg: bytes, serial: int) -> bytes:
    """The same picture with other bytes: a JPEG comment (COM segment) right after the SOI marker
    carrying `serial`, so that content-addressed storage sees a new file every time."""
    comment = f"storyframe bench upload {serial:08d}".encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Server:
    base_url: str
    pid: int
    data_dir: Path


@contextmanager
def storyframe_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """`storyframe serve` in a subprocess (SQLite under `data_dir`), on a free loopback port."""
    port = free_port()
    env = {
        **os.environ,
        "STORYFRAME_DATA_DIR": str(data_dir),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "LOG_LEVEL": "WARNING",
        "GRAPHIQL": "false",
        **(extra_env or {}),
    }
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "storyframe.cli", "serve"]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        yield Server(f"http://127.0.0.1:{port}", process.pid, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def wait_until_up(client: httpx.AsyncClient, path: str = "/readyz") -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            if (await client.get(path)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not start within {STARTUP_SECONDS:.0f} s")


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
    return answer["data"]


async def sign_up_with_project(client: httpx.AsyncClient) -> tuple[str, str]:
    """Sign up a new account and create a project: the token, and the project's ID."""
    credentials = {"email": "uploader@storyframe.test", "password": "benchmarks all the way down"}
    data = await graphql(client, SIGN_UP, {"input": credentials})
    if data["signUp"]["userErrors"]:
        raise RuntimeError(f"signUp refused: {data['signUp']['userErrors']}")
    token: str = data["signUp"]["token"]
    data = await graphql(client, CREATE_PROJECT, {"input": {"name": "Uploads"}}, token)
    if data["createProject"]["userErrors"]:
        raise RuntimeError(f"createProject refused: {data['createProject']['userErrors']}")
    project_id: str = data["createProject"]["project"]["id"]
    return token, project_id


async def upload(
    client: httpx.AsyncClient,
    token: str,
    target_id: str,
    jpeg: bytes,
    name: str = "bench.jpg",
    content_type: str = "image/jpeg",
) -> dict[str, Any]:
    """One `uploadImages` multipart request (GraphQL multipart request spec) with one file: the
    stored image (`id`, `url`, `byteSize`, `width`, `height`)."""
    operations = {
        "query": UPLOAD_IMAGES,
        "variables": {"input": {"targetId": target_id, "files": [None]}},
    }
    response = await client.post(
        "/graphql",
        data={
            "operations": orjson.dumps(operations).decode(),
            "map": orjson.dumps({"0": ["variables.input.files.0"]}).decode(),
        },
        files={"0": (name, jpeg, content_type)},
        headers={"Apollo-Require-Preflight": "true", "Authorization": f"Bearer {token}"},
    )
    answer: Any = orjson.loads(response.content)
    if response.status_code != 200 or answer.get("errors"):
        raise RuntimeError(f"uploadImages failed ({response.status_code}): {answer}")
    payload = answer["data"]["uploadImages"]
    if payload["userErrors"] or not payload["images"]:
        raise RuntimeError(f"uploadImages refused: {payload['userErrors']}")
    image: dict[str, Any] = payload["images"][0]
    return image


# --- memory ----------------------------------------------------------------------------------


def _status_kib(pid: int, field_name: str) -> int:
    """A `kB` figure of /proc/<pid>/status (VmRSS, VmHWM), in KiB; 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024


def hwm_mib(pid: int) -> float:
    return _status_kib(pid, "VmHWM") / 1024


def reset_hwm(pid: int) -> bool:
    """Reset the kernel's peak RSS of `pid` (VmHWM) to its current RSS; False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """A thread that samples a process's RSS until stopped: the samples' peak and count."""

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --- the load --------------------------------------------------------------------------------


@dataclass(slots=True)
class Phase:
    name: str
    largest_file: int
    concurrency: int
    uploads: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    rss_before: float = 0.0
    rss_after: float = 0.0
    sampled_peak: float = 0.0
    kernel_peak: float | None = None  # VmHWM since the phase began, if it could be reset
    samples: int = 0

    @property
    def peak(self) -> float:
        return max(self.sampled_peak, self.kernel_peak or 0.0, self.rss_before, self.rss_after)

    @property
    def growth(self) -> float:
        """MiB the phase added to the RSS it began with, at its peak."""
        return self.peak - self.rss_before

    @property
    def in_flight(self) -> int:
        return self.largest_file * self.concurrency

    @property
    def growth_per_byte_in_flight(self) -> float:
        return self.growth * MIB / self.in_flight

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


class Uploads:
    """Uploads with a fresh serial number each, so that every one stores new bytes."""

    def __init__(self, client: httpx.AsyncClient, server: Server, token: str, target: str):
        self.client = client
        self.server = server
        self.token = token
        self.target = target
        self.serial = 0

    async def run(self, phase: Phase, jpeg: bytes, count: int) -> Phase:
        pid = self.server.pid
        phase.rss_before = rss_mib(pid)
        can_reset = reset_hwm(pid)
        pending = list(range(count))

        async def worker() -> None:
            while pending:
                pending.pop()
                self.serial += 1
                body = with_serial(jpeg, self.serial)
                sent = time.perf_counter()
                await upload(self.client, self.token, self.target, body)
                phase.latencies.append(time.perf_counter() - sent)
                phase.bytes_sent += len(body)
                phase.uploads += 1

        with RssSampler(pid) as sampler:
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(phase.concurrency)))
            phase.seconds = time.perf_counter() - started
        phase.sampled_peak = sampler.peak
        phase.samples = sampler.samples
        phase.kernel_peak = hwm_mib(pid) if can_reset else None
        phase.rss_after = rss_mib(pid)
        return phase


def report(phases: list[Phase], baseline: float, startup_hwm: float) -> None:
    print(
        f"\n{'phase':<28} {'uploads':>7} {'MB/s':>6} {'up/s':>6} {'p50 ms':>6} {'p95 ms':>6} "
        f"{'before':>7} {'peak':>7} {'after':>7} {'growth':>7} {'phase':>6} {'÷ flight':>8}"
    )
    for p in phases:
        print(
            f"{p.name:<28} {p.uploads:7d} {p.bytes_sent / MB / p.seconds:6.1f} "
            f"{p.uploads / p.seconds:6.2f} {p.percentile(0.5):6.0f} {p.percentile(0.95):6.0f} "
            f"{p.rss_before:7.1f} {p.peak:7.1f} {p.rss_after:7.1f} {p.peak - baseline:7.1f} "
            f"{p.growth:6.1f} {p.growth_per_byte_in_flight:8.2f}"
        )
    print(
        "RSS in MiB. peak: the highest of the sampler's peak and the kernel's VmHWM for the\n"
        "phase; growth: peak - the baseline; phase: peak - the RSS before the phase; ÷ flight:\n"
        "the phase's growth ÷ the bytes in flight (file size x uploads at once)."
    )
    kernel = all(p.kernel_peak is not None for p in phases)
    print(
        f"\nbaseline RSS (after sign-up and two small warm-up uploads): {baseline:.1f} MiB; "
        f"VmHWM since start-up, before the warm-up: {startup_hwm:.1f} MiB"
    )
    print(
        "peak RSS per phase from: "
        + ("the sampler and the kernel's VmHWM (reset per phase)" if kernel else "the sampler only")
        + f"; samples per phase: {', '.join(str(p.samples) for p in phases)}"
    )
    peak = max(p.peak for p in phases)
    print(f"overall: peak RSS {peak:.1f} MiB, {peak - baseline:.1f} MiB over the baseline")
    for p in phases:
        ratio = p.growth_per_byte_in_flight
        print(
            f"  {p.name}: growth {p.growth:.1f} MiB ÷ {p.in_flight / MIB:.1f} MiB in flight = "
            f"{ratio:.2f} (target < 2): {'met' if ratio < 2 else 'NOT met'}"
        )


@dataclass(frozen=True, slots=True)
class Plan:
    count: int
    concurrency: int
    small_bytes: int
    large_bytes: int
    large_count: int


async def run(server: Server, plan: Plan, small: bytes, large: bytes) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=300) as client:
        await wait_until_up(client)
        token, project_id = await sign_up_with_project(client)
        uploads = Uploads(client, server, token, project_id)
        startup_hwm = hwm_mib(server.pid)
        warmup = noise_jpeg(100_000)
        await uploads.run(Phase("warm-up", len(warmup), 1), warmup, 2)
        baseline = rss_mib(server.pid)
        phases: list[Phase] = []
        if plan.large_count:  # first, so that no earlier phase has grown the heap for it
            name = f"{plan.large_count} x {len(large) / MB:.1f} MB, sequential"
            phases.append(await uploads.run(Phase(name, len(large), 1), large, plan.large_count))
        name = f"{plan.count} x {len(small) / MB:.1f} MB, sequential"
        phases.append(await uploads.run(Phase(name, len(small), 1), small, plan.count))
        if plan.concurrency > 1:
            name = f"{plan.count} x {len(small) / MB:.1f} MB, {plan.concurrency} at once"
            phases.append(
                await uploads.run(Phase(name, len(small), plan.concurrency), small, plan.count)
            )
    stored = sum(1 for path in (server.data_dir / "media").rglob("*.jpg"))
    print(f"files stored: {stored} JPEGs under {server.data_dir / 'media'}")
    report(phases, baseline, startup_hwm)


# --- decodes at once ---------------------------------------------------------------------------


@dataclass(slots=True)
class DecodeRun:
    """One server's rounds of large PNGs: its limit, and the RSS of each round (MiB)."""

    label: str
    limit: int
    baseline: float = 0.0
    peaks: list[float] = field(default_factory=list)
    afters: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


async def decode_rounds(
    server: Server, run: DecodeRun, png: bytes, concurrency: int, rounds: int
) -> DecodeRun:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=600) as client:
        await wait_until_up(client)
        token, project_id = await sign_up_with_project(client)
        serial = 0
        small = sparse_png(64)
        for _ in range(2):  # warm-up
            serial += 1
            body = with_png_serial(small, serial)
            await upload(client, token, project_id, body, "warm-up.png", "image/png")
        run.baseline = rss_mib(server.pid)
        for _ in range(rounds):
            can_reset = reset_hwm(server.pid)
            bodies = [with_png_serial(png, serial + i + 1) for i in range(concurrency)]
            serial += concurrency
            with RssSampler(server.pid) as sampler:
                started = time.perf_counter()
                await asyncio.gather(
                    *(upload(client, token, project_id, b, "big.png", "image/png") for b in bodies)
                )
                run.seconds.append(time.perf_counter() - started)
            kernel = hwm_mib(server.pid) if can_reset else 0.0
            run.peaks.append(max(sampler.peak, kernel))
            run.afters.append(rss_mib(server.pid))
    return run


def report_decodes(runs: list[DecodeRun], png: bytes, side: int, concurrency: int) -> None:
    print(
        f"\n{concurrency} uploads at once of a {side} x {side} PNG ({len(png):,} bytes), "
        "per round: peak RSS / RSS after, MiB"
    )
    print(
        f"{'server':<26} {'baseline':>8}  "
        + "  ".join(f"{'round ' + str(i + 1):>22}" for i in range(len(runs[0].peaks)))
    )
    for run in runs:
        rounds = "  ".join(
            f"{peak:8.1f} / {after:6.1f} {seconds:4.1f}s"
            for peak, after, seconds in zip(run.peaks, run.afters, run.seconds, strict=True)
        )
        print(f"{run.label:<26} {run.baseline:8.1f}  {rounds}")
    limited, unlimited = runs
    print("ratios, limit ÷ no limit:")
    for i, (peak, after) in enumerate(zip(limited.peaks, limited.afters, strict=True)):
        growth = peak - limited.baseline
        other_growth = unlimited.peaks[i] - unlimited.baseline
        print(
            f"  round {i + 1}: peak {peak / unlimited.peaks[i]:.2f}, "
            f"peak growth {growth / other_growth:.2f}, after {after / unlimited.afters[i]:.2f}"
        )


def main_decodes(side: int, concurrency: int, rounds: int) -> int:
    started = time.perf_counter()
    png = sparse_png(side)
    print(
        f"PNG: {side} x {side}, {len(png):,} bytes (made in {time.perf_counter() - started:.1f} s)"
    )
    runs: list[DecodeRun] = []
    for label, limit in (("limit 2 (the default)", 2), ("no limit (64)", 64)):
        with (
            tempfile.TemporaryDirectory(prefix="storyframe-bench-") as tmp,
            storyframe_server(Path(tmp), {"MAX_CONCURRENT_DECODES": str(limit)}) as server,
        ):
            run = DecodeRun(label, limit)
            runs.append(asyncio.run(decode_rounds(server, run, png, concurrency, rounds)))
    report_decodes(runs, png, side, concurrency)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.uploads", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--count", type=int, default=50, help="uploads of the small file")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="uploads in flight in the second phase (1: skip)"
    )
    parser.add_argument("--small-mb", type=float, default=5.0, help="size of the small JPEG, MB")
    parser.add_argument(
        "--large-mb", type=float, default=20.0, help="size of the large JPEG, MB (under 20 MiB)"
    )
    parser.add_argument("--large-count", type=int, default=1, help="uploads of the large file")
    parser.add_argument(
        "--decodes", action="store_true", help="measure the limit on decodes at once instead"
    )
    parser.add_argument("--png-side", type=int, default=7071, help="with --decodes: PNG side, px")
    parser.add_argument("--rounds", type=int, default=2, help="with --decodes: rounds per server")
    args = parser.parse_args(argv)
    if args.decodes:
        if not (16 <= args.png_side <= 7071 and 1 <= args.concurrency <= 32 and args.rounds >= 1):
            parser.error("--png-side in [16, 7071], --concurrency in [1, 32], --rounds >= 1")
        return main_decodes(args.png_side, args.concurrency, args.rounds)
    limit = DEFAULT_MAX_IMAGE_BYTES - 64  # room for the serial's JPEG comment
    if not (
        0 < args.count <= 1000
        and 0 < args.concurrency <= 32
        and 0 < args.small_mb * MB <= limit
        and 0 < args.large_mb * MB <= limit
        and 0 <= args.large_count <= 100
    ):
        parser.error(
            "--count in [1, 1000], --concurrency in [1, 32], --large-count in [0, 100], "
            f"--small-mb and --large-mb in (0, {limit / MB:.2f}]"
        )
    plan = Plan(
        args.count,
        args.concurrency,
        int(args.small_mb * MB),
        int(args.large_mb * MB),
        args.large_count,
    )
    started = time.perf_counter()
    small = noise_jpeg(plan.small_bytes, limit=limit)
    large = noise_jpeg(plan.large_bytes, limit=limit)
    print(
        f"JPEGs of noise: {len(small):,} bytes and {len(large):,} bytes "
        f"(made in {time.perf_counter() - started:.1f} s)"
    )
    with (
        tempfile.TemporaryDirectory(prefix="storyframe-bench-") as tmp,
        storyframe_server(Path(tmp)) as server,
    ):
        asyncio.run(run(server, plan, small, large))
    return 0


if __name__ == "__main__":
    sys.exit(main())
