"""The typeface of the exports: DejaVu Sans, vendored in `fonts/` (from the `dejavu-fonts-ttf`
2.37.3 package; its licence is `fonts/LICENSE-DejaVu.txt`), so that captions and storyboards
look the same on every machine and need nothing installed. It covers Latin, Greek, Cyrillic and
many symbols; not Chinese or Japanese, nor most emoji."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

from fpdf import FPDF
from fpdf.fonts import TTFFont

FONTS: Final = Path(__file__).resolve().parent / "fonts"
REGULAR_FONT: Final = FONTS / "DejaVuSans.ttf"
BOLD_FONT: Final = FONTS / "DejaVuSans-Bold.ttf"


@functools.cache
def glyphs() -> frozenset[int]:
    """The characters (code points) the typeface draws."""
    reader = FPDF()
    reader.add_font("DejaVu", "", REGULAR_FONT)
    font = reader.fonts["dejavu"]
    assert isinstance(font, TTFFont)
    try:
        return frozenset(font.cmap)
    finally:
        font.ttfont.close()
