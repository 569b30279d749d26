"""Text on a placeholder: what can be drawn, fitted to a width, wrapped and cut with an ellipsis."""

from __future__ import annotations

import unicodedata
from typing import Final

from storyframe.providers.placeholder.shared import (
    ELLIPSIS,
    Font,
)

_MAX_SHOWN_PROMPT: Final = 4000  # characters of the prompt considered for drawing at all


_ASCII_PUNCTUATION: Final = str.maketrans(
    {
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
    }
)


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def metadata_text(text: str) -> str:
    """`text` as PNG text can hold it: valid Unicode, no NUL."""
    return utf8(text).decode("utf-8").replace("\0", "")


def displayable(text: str) -> str:
    """`text` for Pillow's default font (Aileron, mostly ASCII): accents dropped ("é" → "e"),
    dashes made ASCII, control characters removed, whitespace collapsed. Characters the font
    lacks still show, as boxes."""
    text = metadata_text(text[:_MAX_SHOWN_PROMPT]).translate(_ASCII_PUNCTUATION)
    folded = unicodedata.normalize("NFKD", text)
    kept = "".join(
        " " if char.isspace() else char
        for char in folded
        if char.isspace() or not unicodedata.category(char).startswith(("C", "M"))
    )
    return " ".join(kept.split())


def _fits(text: str, font: Font, width: int) -> bool:
    return font.getlength(text) <= width


def fit_line(text: str, font: Font, width: int) -> str:
    """`text` as one line, cut with an ellipsis when it is too wide."""
    if _fits(text, font, width):
        return text
    return _with_ellipsis(text, font, width)


def _with_ellipsis(text: str, font: Font, width: int) -> str:
    cut = _longest_prefix(text, font, width, suffix=ELLIPSIS)
    return text[:cut].rstrip() + ELLIPSIS


def _longest_prefix(text: str, font: Font, width: int, suffix: str = "") -> int:
    """The length of the longest prefix of `text` that fits in `width` followed by `suffix`."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(text[:middle] + suffix, font, width):
            low = middle
        else:
            high = middle - 1
    return low


def wrap(text: str, font: Font, width: int, max_lines: int) -> list[str]:
    """`text` in at most `max_lines` lines of `width`, broken between words (inside a word only
    when it is wider than a line); the last line ends with an ellipsis when text is left over."""
    if max_lines < 1 or width < 1:
        return []
    lines: list[str] = []
    current = ""
    truncated = False
    for word in text.split():
        if len(lines) >= max_lines:
            truncated = True
            break
        candidate = f"{current} {word}" if current else word
        if _fits(candidate, font, width):
            current = candidate
            continue
        if current:
            lines.append(current)
        while not _fits(word, font, width) and len(lines) <= max_lines:
            cut = max(1, _longest_prefix(word, font, width))
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        truncated = True
    if truncated and lines:
        lines[-1] = _with_ellipsis(lines[-1], font, width)
    return lines
