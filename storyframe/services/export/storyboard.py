"""The PDF storyboard of a video: landscape A4 pages of frames, one, four or nine a page, each with
its number, title, image, caption, the prompt that made its image, the model and how long it is
shown. Every page has a header naming the project, the video and the export's date, and its
number in the footer ("Page 1 of 3").

Text is set in DejaVu Sans (see `render_fonts`), so that accents, dashes and most scripts print;
a character the font lacks prints as U+FFFD (�), never failing. Images are embedded as JPEGs no
larger than their place on the page needs at 150 dpi (1600 pixels at most on the long side), and
an image shown in several frames is embedded once."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from PIL import Image

from storyframe.services.export.render_fonts import BOLD_FONT, REGULAR_FONT, glyphs
from storyframe.services.export.render_images import WHITE, load_picture, shown_size
from storyframe.services.export.render_text import drawable, wrapped
from storyframe.services.export.sheets import Layout, Progress, Sheet, SheetFrame
from storyframe.services.image_files import REDUCING_GAP

PAGE_WIDTH: Final = 297.0  # mm, A4 landscape
PAGE_HEIGHT: Final = 210.0
MARGIN: Final = 10.0
HEADER_BOTTOM: Final = 24.0
FOOTER_TOP: Final = 200.0
GAP: Final = 5.0
DPI: Final = 150
MAX_IMAGE_SIDE: Final = 1600
JPEG_QUALITY: Final = 85
FONT: Final = "DejaVu"
MM_PER_PT: Final = 25.4 / 72
GREY: Final = (110, 110, 110)


@dataclass(frozen=True, slots=True)
class StoryboardFacts:
    pages: int


@dataclass(frozen=True, slots=True)
class _Grid:
    columns: int
    rows: int
    title_pt: float  # "Frame N" and the title
    body_pt: float  # the caption, the prompt, the model
    caption_lines: int
    prompt_lines: int

    @property
    def per_page(self) -> int:
        return self.columns * self.rows


GRIDS: Final = {
    Layout.ONE: _Grid(1, 1, 14, 10, 3, 6),
    Layout.GRID_2X2: _Grid(2, 2, 10, 8, 2, 4),
    Layout.GRID_3X3: _Grid(3, 3, 8, 6.5, 2, 3),
}


def seconds(duration_ms: int) -> str:
    """A duration as the storyboard prints it: "2.0 s", "0.25 s"."""
    text = f"{duration_ms / 1000:.2f}".rstrip("0")
    return f"{text}0 s" if text.endswith(".") else f"{text} s"


class _Storyboard(FPDF):
    def __init__(self, sheet: Sheet) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.sheet = sheet
        self.add_font(FONT, "", REGULAR_FONT)
        self.add_font(FONT, "B", BOLD_FONT)
        self.set_font(FONT, "", 10)
        self.set_auto_page_break(False)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_creation_date(sheet.made_at)
        self.set_title(self.clean(f"{sheet.project_name} — {sheet.video_title}"))
        self.set_creator("Storyframe")

    def close_fonts(self) -> None:
        """Close the font files, which the fonts read from lazily until then."""
        for font in self.fonts.values():
            ttfont = getattr(font, "ttfont", None)
            if ttfont is not None:
                ttfont.close()

    def clean(self, text: str) -> str:
        return drawable(text, glyphs())

    def header(self) -> None:
        date = self.sheet.made_at.astimezone(UTC).date().isoformat()
        self.set_text_color(0, 0, 0)
        self.set_xy(MARGIN, MARGIN)
        self.set_font(FONT, "B", 13)
        width = PAGE_WIDTH - 2 * MARGIN - 40
        self.cell(width, 6, self.fitted(self.sheet.project_name, width))
        self.set_font(FONT, "", 10)
        self.cell(40, 6, date, align="R")
        self.set_xy(MARGIN, MARGIN + 6.5)
        self.set_font(FONT, "", 11)
        self.cell(width, 5, self.fitted(self.sheet.video_title, width))
        self.set_draw_color(180, 180, 180)
        self.line(MARGIN, HEADER_BOTTOM - 2, PAGE_WIDTH - MARGIN, HEADER_BOTTOM - 2)

    def footer(self) -> None:
        self.set_xy(MARGIN, FOOTER_TOP + 1)
        self.set_font(FONT, "", 8)
        self.set_text_color(*GREY)
        self.cell(PAGE_WIDTH - 2 * MARGIN, 4, f"Page {self.page_no()} of {{nb}}", align="C")

    def fitted(self, text: str, width: float) -> str:
        """One line of `text` in the current font, cut with an ellipsis to fit `width`."""
        lines = wrapped(self.clean(text), width, self.get_string_width, 1)
        return lines[0] if lines else ""

    def lines(
        self, text: str, width: float, most: int, first_width: float | None = None
    ) -> list[str]:
        return wrapped(self.clean(text), width, self.get_string_width, most, first_width)


def render_storyboard(
    sheet: Sheet, layout: Layout, target: Path, progress: Progress
) -> StoryboardFacts:
    """Write the PDF storyboard of `sheet` to `target` and say how many pages it has.

    `progress(done, total)` is told after each frame is laid out (total: the number of frames;
    the file is written after the last). When it raises, nothing is written and its exception
    reaches the caller. Raises RenderFailed when an image cannot be read. CPU-bound and
    blocking: run it in a worker thread."""
    grid = GRIDS[layout]
    pdf = _Storyboard(sheet)
    try:
        frames = list(sheet.frames)
        width = (PAGE_WIDTH - 2 * MARGIN - (grid.columns - 1) * GAP) / grid.columns
        height = (FOOTER_TOP - HEADER_BOTTOM - (grid.rows - 1) * GAP) / grid.rows
        if not frames:
            pdf.add_page()
            pdf.set_xy(MARGIN, HEADER_BOTTOM + GAP)
            pdf.set_font(FONT, "", 12)
            pdf.cell(0, 8, "This video has no frames.")
        for position, frame in enumerate(frames):
            slot = position % grid.per_page
            if slot == 0:
                pdf.add_page()
            x = MARGIN + (slot % grid.columns) * (width + GAP)
            y = HEADER_BOTTOM + (slot // grid.columns) * (height + GAP)
            _cell(pdf, frame, grid, x, y, width, height)
            progress(position + 1, len(frames))
        pdf.output(str(target))
    finally:
        pdf.close_fonts()
    return StoryboardFacts(pages=pdf.pages_count)


def _line_height(points: float) -> float:
    return points * MM_PER_PT * 1.3


def _cell(
    pdf: _Storyboard,
    frame: SheetFrame,
    grid: _Grid,
    x: float,
    y: float,
    width: float,
    height: float,
) -> None:
    """One frame's cell: number and duration, title, image, then caption, prompt and model."""
    head, body = _line_height(grid.title_pt), _line_height(grid.body_pt)
    pdf.set_text_color(0, 0, 0)
    pdf.set_xy(x, y)
    pdf.set_font(FONT, "B", grid.title_pt)
    duration = seconds(frame.duration_ms)
    duration_width = pdf.get_string_width(duration) + 1
    pdf.cell(width - duration_width, head, f"Frame {frame.number}")
    pdf.set_font(FONT, "", grid.title_pt)
    pdf.cell(duration_width, head, duration, align="R")
    pdf.set_xy(x, y + head)
    pdf.set_font(FONT, "B", grid.title_pt)
    pdf.cell(width, head, pdf.fitted(frame.title, width))

    text_lines = grid.caption_lines + grid.prompt_lines + 1
    image_top = y + 2 * head + 1
    image_height = height - 2 * head - 2 - text_lines * body - 1
    _image(pdf, frame, x, image_top, width, image_height)

    pdf.set_font(FONT, "", grid.body_pt)
    line_y = image_top + image_height + 1
    caption = (frame.caption or "").strip()
    for line in pdf.lines(caption, width, grid.caption_lines) if caption else []:
        pdf.set_xy(x, line_y)
        pdf.cell(width, body, line)
        line_y += body
    line_y = image_top + image_height + 1 + grid.caption_lines * body

    prompt, label = (
        (frame.final_prompt, "Prompt sent: ") if frame.final_prompt else (frame.prompt, "Prompt: ")
    )
    if prompt and prompt.strip():
        pdf.set_font(FONT, "B", grid.body_pt)
        label_width = pdf.get_string_width(label)
        pdf.set_xy(x, line_y)
        pdf.cell(label_width, body, label)
        pdf.set_font(FONT, "", grid.body_pt)
        lines = pdf.lines(prompt, width, grid.prompt_lines, width - label_width)
        for index, line in enumerate(lines):
            indent = label_width if index == 0 else 0
            pdf.set_xy(x + indent, line_y)
            pdf.cell(width - indent, body, line)
            line_y += body
    line_y = image_top + image_height + 1 + (grid.caption_lines + grid.prompt_lines) * body
    pdf.set_text_color(*GREY)
    pdf.set_xy(x, line_y)
    model = f"Model: {frame.model}" if frame.model else "Uploaded image"
    pdf.cell(width, body, pdf.fitted(model, width), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _image(
    pdf: _Storyboard,
    frame: SheetFrame,
    x: float,
    y: float,
    width: float,
    height: float,
) -> None:
    """The frame's image as large as fits the box, centred, keeping its shape."""
    shown_w, shown_h = shown_size(frame)
    scale = min(width / shown_w, height / shown_h)
    placed_w, placed_h = shown_w * scale, shown_h * scale
    pixels = min(
        MAX_IMAGE_SIDE / max(shown_w, shown_h),
        max(placed_w, placed_h) / 25.4 * DPI / max(shown_w, shown_h),
        1.0,
    )
    size = (max(1, math.ceil(shown_w * pixels)), max(1, math.ceil(shown_h * pixels)))
    picture = load_picture(frame, WHITE, size)
    if picture.size != size:
        picture = picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    data = io.BytesIO()
    picture.save(data, "JPEG", quality=JPEG_QUALITY)
    del picture
    # The same bytes for the same image at the same size: the PDF holds them once.
    pdf.image(data, x + (width - placed_w) / 2, y + (height - placed_h) / 2, placed_w, placed_h)
