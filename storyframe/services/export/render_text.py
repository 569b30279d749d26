"""Text set in a box of the exports: broken into lines that fit, cut with an ellipsis when there
are too many, and kept to the characters the font can draw."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Container
from typing import Final

Measure = Callable[[str], float]
"""How wide a piece of text is, in the unit of the widths it is fitted to."""

ELLIPSIS: Final = "…"
REPLACEMENT: Final = "\ufffd"


def drawable(text: str, glyphs: Container[int]) -> str:
    """`text` with what the font cannot draw replaced: a character it lacks becomes U+FFFD (�),
    a mark or format character it lacks (a variation selector, a zero-width joiner) is left
    out, and control characters other than line breaks become spaces."""
    out: list[str] = []
    for character in text.replace("\r\n", "\n"):
        if character == "\n":
            out.append(character)
        elif unicodedata.category(character) == "Cc":
            out.append(" ")
        elif ord(character) in glyphs:
            out.append(character)
        elif unicodedata.category(character) not in ("Mn", "Me", "Cf"):
            out.append(REPLACEMENT)
    return "".join(out)


def wrapped(
    text: str, width: float, measure: Measure, lines: int, first_width: float | None = None
) -> list[str]:
    """`text` broken into at most `lines` lines no wider than `width` (the first no wider than
    `first_width`, when given): at spaces where it can, inside a word too long for a line, at
    its own line breaks too, empty lines left out. When the text does not fit, the last line
    ends with an ellipsis."""
    out: list[str] = []

    def room() -> float:
        return first_width if first_width is not None and not out else width

    overflow = False
    for paragraph in text.splitlines():
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if measure(candidate) <= room():
                line = candidate
                continue
            if line:
                out.append(line)
                line = ""
            while measure(word) > room() and len(word) > 1:
                cut = _longest_prefix(word, room(), measure)
                out.append(word[:cut])
                word = word[cut:]
            line = word
        if line:
            out.append(line)
        if len(out) > lines:
            overflow = True
            break
    if len(out) <= lines and not overflow:
        return out
    limit = first_width if lines == 1 and first_width is not None else width
    last = _ellipsized(out[lines - 1], limit, measure)
    return [*out[: lines - 1], last]


def _longest_prefix(word: str, width: float, measure: Measure) -> int:
    """How many characters of `word` fit in `width` (one at least)."""
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(word[:middle]) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _ellipsized(line: str, width: float, measure: Measure) -> str:
    while line and measure(f"{line}{ELLIPSIS}") > width:
        line = line[:-1]
    return f"{line.rstrip()}{ELLIPSIS}"
