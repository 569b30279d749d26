"""render_storyboard: the PDF storyboard, read back with pypdf: its pages, their text and their
images. The images are made here with Pillow, in `tmp_path`."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from PIL import Image
from pypdf import PageObject, PdfReader
from pypdf._page import ImageFile
from pypdf.generic import DictionaryObject, IndirectObject

from storyframe.services.export.sheets import Layout, Sheet, SheetFrame
from storyframe.services.export.storyboard import StoryboardFacts, render_storyboard, seconds

COLOURS = [(220, 40, 40), (30, 60, 220), (40, 200, 60), (240, 200, 30), (90, 40, 200)]
SIZES = [(1536, 1024), (1024, 1536), (640, 640), (333, 201), (1200, 400)]


def image(tmp_path: Path, number: int, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    path = tmp_path / f"image-{number}.png"
    picture = Image.new("RGB", size, colour)
    picture.paste((255, 255, 255), (0, 0, size[0] // 4, size[1] // 4))
    picture.save(path)
    return path


def frames(tmp_path: Path, count: int = 5) -> list[SheetFrame]:
    made = []
    for index in range(count):
        number = index + 1
        size = SIZES[index % len(SIZES)]
        made.append(
            SheetFrame(
                number=number,
                title=f"Scene {number} title",
                caption=f"Caption of scene {number}" if number != 3 else None,
                duration_ms=2000 if number != 2 else 750,
                prompt=f"user prompt {number}",
                final_prompt=f"assembled prompt {number}" if number % 2 == 0 else None,
                model="gpt-image-1.5" if number != 4 else None,
                image=image(tmp_path, number, size, COLOURS[index % len(COLOURS)]),
                width=size[0],
                height=size[1],
                content_type="image/png",
            )
        )
    return made


def sheet_of(items: Sequence[SheetFrame]) -> Sheet:
    return Sheet(
        "Harbour Tales", "The Lighthouse", datetime(2026, 12, 2, 15, 30, tzinfo=UTC), items
    )


def render(
    tmp_path: Path, items: Sequence[SheetFrame], layout: Layout
) -> tuple[PdfReader, StoryboardFacts]:
    target = tmp_path / f"storyboard-{layout}.pdf"
    facts = render_storyboard(sheet_of(items), layout, target, lambda done, total: None)
    return PdfReader(target), facts


def pixels(item: ImageFile) -> tuple[int, int]:
    assert item.image is not None
    return item.image.size


def content(page: PageObject) -> bytes:
    stream = page.get_contents()
    assert stream is not None
    return stream.get_data()


def embedded(reader: PdfReader) -> set[int]:
    """The object numbers of the images the pages show."""
    numbers: set[int] = set()
    for page in reader.pages:
        resources = cast(DictionaryObject, page["/Resources"].get_object())
        images = cast(DictionaryObject, resources["/XObject"].get_object())
        for reference in images.values():
            assert isinstance(reference, IndirectObject)
            numbers.add(reference.idnum)
    return numbers


def text_of(reader: PdfReader) -> list[str]:
    return [page.extract_text() for page in reader.pages]


@pytest.mark.parametrize(
    ("layout", "pages", "per_page"),
    [(Layout.ONE, 5, [1] * 5), (Layout.GRID_2X2, 2, [4, 1]), (Layout.GRID_3X3, 1, [5])],
)
def test_one_four_or_nine_frames_a_page(
    tmp_path: Path, layout: Layout, pages: int, per_page: list[int]
) -> None:
    reader, facts = render(tmp_path, frames(tmp_path), layout)

    assert facts == StoryboardFacts(pages=pages)
    assert len(reader.pages) == pages
    assert [len(page.images) for page in reader.pages] == per_page
    for page in reader.pages:  # landscape A4
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (842, 595)


def test_every_page_has_the_header_and_its_number_and_every_frame_its_facts(tmp_path: Path) -> None:
    reader, _ = render(tmp_path, frames(tmp_path), Layout.GRID_2X2)

    first, second = text_of(reader)
    for number, page in enumerate((first, second), start=1):
        assert "Harbour Tales" in page
        assert "The Lighthouse" in page
        assert "2026-12-02" in page
        assert f"Page {number} of 2" in page
    for expected in (
        "Frame 1",
        "Scene 1 title",
        "Caption of scene 1",
        "Prompt: user prompt 1",  # no assembled prompt: the user's, marked as such
        "Prompt sent: assembled prompt 2",  # the assembled one when there is one
        "Model: gpt-image-1.5",
        "Uploaded image",  # frame 4 has no model
        "2.0 s",
        "0.75 s",
        "Frame 4",
    ):
        assert expected in first, expected
    assert "user prompt 2" not in first
    assert "Caption of scene 3" not in first
    assert "Frame 5" in second
    assert "Scene 5 title" in second
    assert "Frame 1" not in second


@pytest.mark.parametrize(
    ("duration_ms", "printed"),
    [(2000, "2.0 s"), (750, "0.75 s"), (1250, "1.25 s"), (30000, "30.0 s"), (1001, "1.0 s")],
)
def test_durations_print_in_seconds(duration_ms: int, printed: str) -> None:
    assert seconds(duration_ms) == printed


def test_unicode_text_prints_and_what_the_font_lacks_becomes_a_replacement(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (first,) = frames(tmp_path, 1)
    unusual = replace(
        first,
        title="Café — «Été»",
        caption="Mer d'été — 日本 🙂\u200d\ufe0f\x07 fin",
        final_prompt="Ωmega ąę ß\tдом",  # noqa: RUF001
    )

    with caplog.at_level(logging.WARNING):
        reader, _ = render(tmp_path, [unusual], Layout.ONE)

    (page,) = text_of(reader)
    assert "Café — «Été»" in page
    assert (
        "Mer d'été — \ufffd\ufffd \ufffd" in page
    )  # the characters the font has, a replacement for the others
    assert "fin" in page
    assert "Ωmega ąę ß дом" in page
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_long_prompt_is_cut_with_an_ellipsis_inside_its_cell(tmp_path: Path) -> None:
    items = frames(tmp_path, 2)
    long_prompt = " ".join(f"word{n}" for n in range(400)) + " THE-END"
    items[0] = replace(items[0], prompt=long_prompt, caption="x" * 900)

    reader, _ = render(tmp_path, items, Layout.GRID_3X3)

    (page,) = text_of(reader)
    assert "Prompt: word0 word1" in page
    assert "…" in page
    assert "THE-END" not in page
    assert "word399" not in page
    assert "Frame 2" in page  # the next cell is still there


def test_images_keep_their_shape_are_scaled_down_and_embedded_once(tmp_path: Path) -> None:
    items = frames(tmp_path, 3)
    big = image(tmp_path, 9, (3000, 2000), (10, 120, 200))
    items[0] = replace(items[0], image=big, width=3000, height=2000)
    items[2] = replace(items[1], number=3)  # the same image as frame 2

    one, _ = render(tmp_path, items, Layout.ONE)
    grid, _ = render(tmp_path, items, Layout.GRID_3X3)

    (large,) = one.pages[0].images
    assert max(pixels(large)) <= 1600
    assert pixels(large)[0] / pixels(large)[1] == pytest.approx(1.5, abs=0.01)
    (small, *_) = grid.pages[0].images
    assert max(pixels(small)) < max(pixels(large))
    placed = re.findall(
        rb"([\d.]+) 0 0 ([\d.]+) [\d.]+ [\d.]+ cm /I(\d+) Do", content(one.pages[0])
    )
    ((width, height, _),) = placed
    assert float(width) / float(height) == pytest.approx(1.5, abs=0.01)
    assert len(embedded(one)) == 2  # three frames, two images


def test_progress_is_told_after_each_frame_and_a_raise_from_it_writes_nothing(
    tmp_path: Path,
) -> None:
    items = frames(tmp_path, 3)
    told: list[tuple[int, int]] = []

    render_storyboard(
        sheet_of(items), Layout.ONE, tmp_path / "whole.pdf", lambda *step: told.append(step)
    )
    assert told == [(1, 3), (2, 3), (3, 3)]

    class Cancelled(Exception):
        pass

    def cancel(done: int, total: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        render_storyboard(sheet_of(items), Layout.ONE, tmp_path / "cancelled.pdf", cancel)
    assert not (tmp_path / "cancelled.pdf").exists()


def test_a_video_without_frames_has_one_page_saying_so(tmp_path: Path) -> None:
    reader, facts = render(tmp_path, [], Layout.GRID_2X2)

    assert facts.pages == 1
    assert "This video has no frames." in text_of(reader)[0]
    assert "Page 1 of 1" in text_of(reader)[0]
