"""render_archive: the ZIP of a video's originals, storyboard and manifest, read back with
zipfile. The images are made here with Pillow, in `tmp_path`."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from storyframe.services.export.archive import ArchiveFacts, frame_file, render_archive, slug
from storyframe.services.export.sheets import Layout, RenderFailed, Sheet, SheetFrame
from storyframe.services.export.storyboard import render_storyboard

FORMATS = [
    ("PNG", "image/png", "png"),
    ("JPEG", "image/jpeg", "jpg"),
    ("WEBP", "image/webp", "webp"),
]


def frames(tmp_path: Path) -> list[SheetFrame]:
    titles = ["Opening — Café at dawn!", "  ", "日本の港"]
    made = []
    for index, ((pillow, content_type, extension), title) in enumerate(
        zip(FORMATS, titles, strict=True)
    ):
        number = index + 1
        path = tmp_path / f"original-{number}.{extension}"
        Image.effect_noise((120 + index, 80), 40 + index).convert("RGB").save(path, pillow)
        made.append(
            SheetFrame(
                number=number,
                title=title,
                caption="Waves" if number == 1 else None,
                duration_ms=1500 + 500 * index,
                prompt=f"prompt {number}",
                final_prompt="sent prompt 1" if number == 1 else None,
                model="gpt-image-1.5" if number != 2 else None,
                image=path,
                width=120 + index,
                height=80,
                content_type=content_type,
            )
        )
    return made


def sheet_of(items: Sequence[SheetFrame]) -> Sheet:
    return Sheet(
        "Harbour Tales", "The Lighthouse", datetime(2026, 12, 2, 15, 30, 5, tzinfo=UTC), items
    )


def storyboard(tmp_path: Path, sheet: Sheet) -> Path:
    target = tmp_path / "storyboard.pdf"
    render_storyboard(sheet, Layout.GRID_2X2, target, lambda done, total: None)
    return target


def test_the_archive_holds_the_originals_in_order_the_storyboard_and_the_manifest(
    tmp_path: Path,
) -> None:
    sheet = sheet_of(frames(tmp_path))
    target = tmp_path / "export.zip"

    facts = render_archive(sheet, storyboard(tmp_path, sheet), target, lambda done, total: None)

    assert facts == ArchiveFacts(files=5, bytes=target.stat().st_size)
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [
            "frames/001-opening-cafe-at-dawn.png",
            "frames/002-frame.jpg",
            "frames/003-frame.webp",
            "storyboard.pdf",
            "manifest.json",
        ]
        for name, item in zip(archive.namelist(), sheet.frames, strict=False):
            assert archive.read(name) == item.image.read_bytes()  # byte for byte
            assert archive.getinfo(name).compress_type == zipfile.ZIP_STORED
        assert archive.getinfo("storyboard.pdf").compress_type == zipfile.ZIP_DEFLATED
        assert archive.getinfo("manifest.json").compress_type == zipfile.ZIP_DEFLATED
        pdf = PdfReader(io.BytesIO(archive.read("storyboard.pdf")))
        assert "The Lighthouse" in pdf.pages[0].extract_text()
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest == {
        "project": "Harbour Tales",
        "video": "The Lighthouse",
        "exportedAt": "2026-12-02T15:30:05Z",
        "frames": [
            {
                "number": 1,
                "title": "Opening — Café at dawn!",
                "caption": "Waves",
                "durationMs": 1500,
                "startMs": 0,
                "prompt": "prompt 1",
                "finalPrompt": "sent prompt 1",
                "model": "gpt-image-1.5",
                "width": 120,
                "height": 80,
                "contentType": "image/png",
                "file": "frames/001-opening-cafe-at-dawn.png",
            },
            {
                "number": 2,
                "title": "  ",
                "caption": None,
                "durationMs": 2000,
                "startMs": 1500,
                "prompt": "prompt 2",
                "finalPrompt": None,
                "model": None,
                "width": 121,
                "height": 80,
                "contentType": "image/jpeg",
                "file": "frames/002-frame.jpg",
            },
            {
                "number": 3,
                "title": "日本の港",
                "caption": None,
                "durationMs": 2500,
                "startMs": 3500,
                "prompt": "prompt 3",
                "finalPrompt": None,
                "model": "gpt-image-1.5",
                "width": 122,
                "height": 80,
                "contentType": "image/webp",
                "file": "frames/003-frame.webp",
            },
        ],
        "totalDurationMs": 6000,
    }


def test_file_names_take_more_digits_past_999_frames_and_slugs_stay_short(tmp_path: Path) -> None:
    (first, *_) = frames(tmp_path)

    assert frame_file(replace(first, number=7), 999) == "frames/007-opening-cafe-at-dawn.png"
    assert frame_file(replace(first, number=7), 1200) == "frames/0007-opening-cafe-at-dawn.png"
    assert slug("A" * 80 + " b") == "a" * 60
    assert slug("Ça va? Oui -- très   bien / 2") == "ca-va-oui-tres-bien-2"
    with pytest.raises(RenderFailed):
        frame_file(replace(first, content_type="image/gif"), 1)


def test_progress_is_told_after_each_image_and_a_raise_from_it_stops_the_archive(
    tmp_path: Path,
) -> None:
    sheet = sheet_of(frames(tmp_path))
    pdf = storyboard(tmp_path, sheet)
    told: list[tuple[int, int]] = []

    render_archive(sheet, pdf, tmp_path / "whole.zip", lambda *step: told.append(step))
    assert told == [(1, 3), (2, 3), (3, 3)]

    class Cancelled(Exception):
        pass

    def cancel_at_two(done: int, total: int) -> None:
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        render_archive(sheet, pdf, tmp_path / "cancelled.zip", cancel_at_two)
    with zipfile.ZipFile(tmp_path / "cancelled.zip") as archive:
        assert len(archive.namelist()) == 2  # what was copied before, nothing after


def test_a_missing_original_fails_naming_its_frame(tmp_path: Path) -> None:
    items = frames(tmp_path)
    items[1].image.unlink()
    sheet = sheet_of(items)

    with pytest.raises(RenderFailed) as failure:
        render_archive(
            sheet, tmp_path / "no.pdf", tmp_path / "export.zip", lambda done, total: None
        )

    assert failure.value.frame == 2


def test_originals_are_copied_piece_by_piece_never_whole_in_memory(tmp_path: Path) -> None:
    (first, *_) = frames(tmp_path)
    large = tmp_path / "large.png"
    large.write_bytes(os.urandom(24 * 1024 * 1024))
    sheet = sheet_of([replace(first, image=large)])
    pdf = storyboard(tmp_path, sheet_of([first]))

    tracemalloc.start()
    try:
        render_archive(sheet, pdf, tmp_path / "export.zip", lambda done, total: None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 * 1024 * 1024
    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        assert (
            archive.getinfo("frames/001-opening-cafe-at-dawn.png").file_size == large.stat().st_size
        )
