"""The ZIP archive of a video: every exported frame's original image, numbered in order, the PDF
storyboard and a JSON manifest of the frames, their text and their timing.

The images go in as they are (stored: they are compressed already), copied from disk piece by
piece, so that an archive of hundreds of large images never takes much memory; the manifest and
the storyboard are deflated."""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Final

from storyframe.domain.ports import IMAGE_EXTENSIONS
from storyframe.services.export.sheets import Progress, RenderFailed, Sheet, SheetFrame

SLUG_LENGTH: Final = 60
_COPY_CHUNK: Final = 1024 * 1024
_ZIP64_FROM: Final = 2**31 - 1  # a larger entry needs ZIP64 sizes from its header on
_EARLIEST_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class ArchiveFacts:
    files: int  # entries in the archive: the images, the storyboard and the manifest
    bytes: int  # the size of the ZIP file


def slug(title: str) -> str:
    """A file name's worth of `title`: ASCII letters and digits in lower case, words joined by
    hyphens (accents dropped, other characters left out), at most 60 characters; "frame" when
    nothing is left."""
    ascii_only = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
    return words[:SLUG_LENGTH].rstrip("-") or "frame"


def frame_file(frame: SheetFrame, count: int) -> str:
    """Where a frame's image goes in the archive: `frames/001-<slug>.<ext>`, numbered with as
    many digits as the largest number needs, three at least."""
    digits = max(3, len(str(count)))
    extension = IMAGE_EXTENSIONS.get(frame.content_type)
    if extension is None:
        raise RenderFailed(f"frame {frame.number}: not an exportable image type", frame.number)
    return f"frames/{frame.number:0{digits}d}-{slug(frame.title)}.{extension}"


def manifest(sheet: Sheet, names: Sequence[str]) -> dict[str, Any]:
    """What the archive's manifest.json says."""
    start = 0
    frames: list[dict[str, Any]] = []
    for frame, name in zip(sheet.frames, names, strict=True):
        frames.append(
            {
                "number": frame.number,
                "title": frame.title,
                "caption": frame.caption,
                "durationMs": frame.duration_ms,
                "startMs": start,
                "prompt": frame.prompt,
                "finalPrompt": frame.final_prompt,
                "model": frame.model,
                "width": frame.width,
                "height": frame.height,
                "contentType": frame.content_type,
                "file": name,
            }
        )
        start += frame.duration_ms
    return {
        "project": sheet.project_name,
        "video": sheet.video_title,
        "exportedAt": sheet.made_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "frames": frames,
        "totalDurationMs": start,
    }


def render_archive(
    sheet: Sheet, storyboard_pdf: Path, target: Path, progress: Progress
) -> ArchiveFacts:
    """Write the ZIP archive of `sheet` to `target`, with `storyboard_pdf` in it as
    storyboard.pdf, and say what it holds.

    `progress(done, total)` is told after each image is copied (total: the number of frames).
    When it raises, writing stops there and its exception reaches the caller, who deletes the
    incomplete `target`. Raises RenderFailed when an image cannot be read. Blocking: run it in
    a worker thread."""
    frames = list(sheet.frames)
    names = [frame_file(frame, len(frames)) for frame in frames]
    moment = max(_EARLIEST_ZIP_TIME, sheet.made_at.astimezone(UTC).timetuple()[:6])
    with zipfile.ZipFile(target, "w", allowZip64=True) as archive:
        for position, (frame, name) in enumerate(zip(frames, names, strict=True), start=1):
            _copy(archive, frame.image, name, moment, zipfile.ZIP_STORED, frame.number)
            progress(position, len(frames))
        _copy(archive, storyboard_pdf, "storyboard.pdf", moment, zipfile.ZIP_DEFLATED, None)
        text = json.dumps(manifest(sheet, names), ensure_ascii=False, indent=2) + "\n"
        entry = zipfile.ZipInfo("manifest.json", moment)
        entry.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(entry, text.encode())
    return ArchiveFacts(files=len(frames) + 2, bytes=target.stat().st_size)


def _copy(
    archive: zipfile.ZipFile,
    source: Path,
    name: str,
    moment: tuple[int, int, int, int, int, int],
    compression: int,
    frame: int | None,
) -> None:
    entry = zipfile.ZipInfo(name, moment)
    entry.compress_type = compression
    entry.external_attr = 0o644 << 16
    try:
        reading = source.open("rb")
        size = os.fstat(reading.fileno()).st_size
    except OSError as error:
        what = f"frame {frame}" if frame is not None else "the storyboard"
        raise RenderFailed(f"{what}: could not be read: {error}", frame) from None
    with reading, archive.open(entry, "w", force_zip64=size >= _ZIP64_FROM) as out:
        shutil.copyfileobj(reading, out, _COPY_CHUNK)
