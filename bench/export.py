"""Benchmark: the MP4 export (`render_video`) against the ffmpeg command line on the same images.

    .venv/bin/python -m bench.export [--frames 50] [--also 500] [--rounds 3]
                                     [--duration-ms 2000] [--also-duration-ms 250]
                                     [--ffmpeg-also]

Makes N distinct PNG images in a temporary directory, 1024x1536 and 1536x1024 in turn (the
portrait and landscape sizes of the image models), of random overlapping ellipses, then renders
them as the export does: 1080p, 24 fps, each frame 2 s, 500 ms crossfades, letterboxed. Each
rendering runs in a child process of its own (`python -m bench.export --child SPEC`), which
measures its wall and CPU time around `render_video` alone and its peak RSS growth: VmHWM after
rendering (reset to the current RSS through /proc/self/clear_refs just before) minus VmRSS
before. In turn, round after round, the same images are encoded by the `ffmpeg` command with the
same settings: libx264 with the same CRF, preset, lookahead, keyframe interval and sliced
threads, yuv420p, BT.709, +faststart, scale and pad to letterbox, the same durations, `xfade`
crossfades of the same length at the same moments. Its wall and CPU time and peak RSS come
from wait4. Both files are probed afterwards (pictures, duration).

`--also M` renders M frames as well (at `--also-duration-ms` each, 250 ms by default, to keep it
short; crossfades capped at half of that), by `render_video` only unless `--ffmpeg-also` is given:
the ffmpeg command opens every image as an input of its own at once, which for hundreds of
images takes more memory than this machine has.

Needs Debian's ffmpeg (`apt-get install ffmpeg`); the export itself uses PyAV's own FFmpeg
libraries. It prints figures; it never asserts them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw

from storyframe.services.export.render_timeline import fade_ms, shots
from storyframe.services.export.sheets import Sheet, SheetFrame, Transition, VideoOptions
from storyframe.services.export.video import (
    CRF,
    KEYFRAME_SECONDS,
    LOOKAHEAD,
    PRESET,
    render_video,
)

ROOT = Path(__file__).resolve().parent.parent
SIZES = ((1024, 1536), (1536, 1024))
WIDTH, HEIGHT = 1920, 1080
FPS = 24
TRANSITION_MS = 500


# --- the images --------------------------------------------------------------------------------


def make_images(directory: Path, count: int) -> list[Path]:
    """`count` distinct PNGs, portrait and landscape in turn, made once per directory."""
    paths = []
    for index in range(count):
        path = directory / f"image-{index:04d}.png"
        paths.append(path)
        if path.exists():
            continue
        size = SIZES[index % 2]
        chance = random.Random(index)
        image = Image.new("RGB", size, tuple(chance.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(80):
            x, y = chance.randrange(size[0]), chance.randrange(size[1])
            w, h = chance.randrange(40, 500), chance.randrange(40, 500)
            colour = tuple(chance.randrange(256) for _ in range(3))
            draw.ellipse((x - w // 2, y - h // 2, x + w // 2, y + h // 2), fill=colour)
        image.save(path, "PNG", compress_level=1)
    return paths


def sheet_of(paths: list[Path], duration_ms: int) -> Sheet:
    frames = []
    for index, path in enumerate(paths):
        width, height = SIZES[index % 2]
        frames.append(
            SheetFrame(
                number=index + 1,
                title=f"Frame {index + 1}",
                caption=None,
                duration_ms=duration_ms,
                prompt=None,
                final_prompt=None,
                model=None,
                image=path,
                width=width,
                height=height,
                content_type="image/png",
            )
        )
    return Sheet("Bench", "Bench", datetime.now(UTC), frames)


OPTIONS = VideoOptions(fps=FPS, transition=Transition.CROSSFADE, transition_ms=TRANSITION_MS)


# --- one run of each ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    wall: float  # seconds
    cpu: float  # seconds, user + system
    peak_mb: float  # peak RSS
    growth_mb: float | None  # peak RSS minus RSS before rendering, when known
    pictures: int
    duration: float  # seconds, as probed


def _status(field: str) -> int:
    """A figure of /proc/self/status, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def child(spec: dict[str, Any]) -> None:
    """Render as the export does, in this process, and print what it took as JSON."""
    sheet = sheet_of([Path(path) for path in spec["images"]], spec["duration_ms"])
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    render_video(sheet, OPTIONS, Path(spec["target"]), lambda done, total: None)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak = _status("VmHWM")
    cpu = after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime
    print(json.dumps({"wall": wall, "cpu": cpu, "before_kb": before, "peak_kb": peak}))


def probe(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None
        assert stream.time_base is not None
        return stream.frames, float(stream.duration * stream.time_base)


def ours(images: list[Path], duration_ms: int, target: Path) -> Run:
    spec = json.dumps(
        {"images": [str(p) for p in images], "duration_ms": duration_ms, "target": str(target)}
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.export", "--child", spec],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    pictures, duration = probe(target)
    return Run(
        wall=figures["wall"],
        cpu=figures["cpu"],
        peak_mb=figures["peak_kb"] / 1024,
        growth_mb=(figures["peak_kb"] - figures["before_kb"]) / 1024,
        pictures=pictures,
        duration=duration,
    )


def ffmpeg_command(images: list[Path], duration_ms: int, target: Path) -> list[str]:
    """The ffmpeg command that makes the same video: every image a looped input as long as it is
    seen (its duration, plus the crossfade into it), scaled and padded to letterbox, and the
    inputs joined by `xfade` crossfades ending where each frame starts."""
    seconds = duration_ms / 1000
    fades = [float(fade_ms(OPTIONS, duration_ms, duration_ms)) / 1000] * (len(images) - 1)
    command = ["ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-nostdin"]
    for index, path in enumerate(images):
        length = seconds + (fades[index - 1] if index else 0)
        command += ["-loop", "1", "-framerate", str(FPS), "-t", f"{length:.6f}", "-i", str(path)]
    graph = [
        f"[{index}:v]scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease"
        f":out_color_matrix=bt709:out_range=tv,pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2,"
        f"setsar=1,format=yuv420p[v{index}]"
        for index in range(len(images))
    ]
    joined = "v0"
    for index in range(1, len(images)):
        offset = index * seconds - fades[index - 1]
        graph.append(
            f"[{joined}][v{index}]xfade=transition=fade:duration={fades[index - 1]:.6f}"
            f":offset={offset:.6f}[x{index}]"
        )
        joined = f"x{index}"
    return [
        *command,
        "-filter_complex",
        ";".join(graph),
        "-map",
        f"[{joined}]",
        "-c:v",
        "libx264",
        "-crf",
        str(CRF),
        "-preset",
        PRESET,
        "-rc-lookahead",
        str(LOOKAHEAD),
        "-thread_type",
        "slice",
        "-g",
        str(KEYFRAME_SECONDS * FPS),
        "-pix_fmt",
        "yuv420p",
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-color_range",
        "tv",
        "-movflags",
        "+faststart",
        str(target),
    ]


def theirs(images: list[Path], duration_ms: int, target: Path) -> Run:
    command = ffmpeg_command(images, duration_ms, target)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode() if process.stderr else ""
    if process.returncode:
        raise RuntimeError(f"ffmpeg failed ({process.returncode}): {errors[-2000:]}")
    pictures, duration = probe(target)
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_mb=usage.ru_maxrss / 1024,
        growth_mb=None,
        pictures=pictures,
        duration=duration,
    )


# --- reporting ---------------------------------------------------------------------------------


def line(name: str, run: Run, video_seconds: float) -> str:
    growth = f"{run.growth_mb:7.1f}" if run.growth_mb is not None else "      -"
    return (
        f"  {name:<13} wall {run.wall:7.2f} s  cpu {run.cpu:7.2f} s  "
        f"speed {video_seconds / run.wall:5.2f}x  peak RSS {run.peak_mb:7.1f} MB  "
        f"growth {growth} MB  ({run.pictures} pictures, {run.duration:.3f} s)"
    )


def compare(
    images: list[Path], duration_ms: int, rounds: int, work: Path, with_ffmpeg: bool
) -> None:
    timeline = shots(sheet_of(images, duration_ms).frames, OPTIONS)
    video_seconds = timeline[-1].end_ms / 1000
    print(
        f"\n{len(images)} frames x {duration_ms} ms at {FPS} fps, crossfades of "
        f"{float(fade_ms(OPTIONS, duration_ms, duration_ms)):.0f} ms: {video_seconds:.1f} s of "
        f"video, {timeline[-1].until} pictures at {WIDTH}x{HEIGHT}"
    )
    ratios = []
    for round_number in range(1, rounds + 1):
        print(f" round {round_number}")
        mine = ours(images, duration_ms, work / "ours.mp4")
        print(line("render_video", mine, video_seconds))
        if not with_ffmpeg:
            continue
        baseline = theirs(images, duration_ms, work / "ffmpeg.mp4")
        print(line("ffmpeg", baseline, video_seconds))
        ratios.append(mine.wall / baseline.wall)
        print(
            f"  ratio (render_video / ffmpeg wall): {ratios[-1]:.2f}   sizes: "
            f"{(work / 'ours.mp4').stat().st_size / 1e6:.1f} MB / "
            f"{(work / 'ffmpeg.mp4').stat().st_size / 1e6:.1f} MB"
        )
    if ratios:
        print(
            f" ratio by round: {', '.join(f'{r:.2f}' for r in ratios)}; "
            f"median {statistics.median(ratios):.2f} (target: at most 1.3)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.export", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--frames", type=int, default=50, help="frames of the compared video")
    parser.add_argument("--duration-ms", type=int, default=2000, help="each frame's duration")
    parser.add_argument("--also", type=int, default=0, help="frames of a second, longer video")
    parser.add_argument("--also-duration-ms", type=int, default=250, help="its frames' duration")
    parser.add_argument("--ffmpeg-also", action="store_true", help="run ffmpeg on it too")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both in turn")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    if shutil.which("ffmpeg") is None:
        print("needs the ffmpeg command: apt-get install ffmpeg", file=sys.stderr)
        return 2
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True)
    print(f"ffmpeg: {version.stdout.splitlines()[0]}")
    print(f"PyAV {av.__version__}, FFmpeg libraries {av.ffmpeg_version_info}")
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        work = Path(folder)
        started = time.perf_counter()
        images = make_images(work, max(args.frames, args.also))
        print(f"made {len(images)} images in {time.perf_counter() - started:.1f} s")
        compare(images[: args.frames], args.duration_ms, args.rounds, work, with_ffmpeg=True)
        if args.also:
            compare(images[: args.also], args.also_duration_ms, 1, work, args.ffmpeg_also)
    return 0


if __name__ == "__main__":
    sys.exit(main())
