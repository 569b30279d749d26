"""What can be said of an image offline: its size, format and main colours, named roughly."""

from __future__ import annotations

import io
from typing import Final

from PIL import Image

from storyframe.providers.placeholder.shared import (
    MAX_DECODED_PIXELS,
    READABLE_FORMATS,
    UNREADABLE,
    WHITE,
    Colour,
    opaque,
)

_FORMAT_LABELS: Final = {"WEBP": "WebP"}

# Rough names of colours, matched by nearest RGB ("redmean" weighted distance).
_COLOUR_NAMES: Final[tuple[tuple[str, Colour], ...]] = (
    ("black", (0, 0, 0)),
    ("dark grey", (64, 64, 64)),
    ("grey", (128, 128, 128)),
    ("light grey", (192, 192, 192)),
    ("white", (255, 255, 255)),
    ("red", (255, 0, 0)),
    ("dark red", (139, 0, 0)),
    ("pink", (255, 160, 190)),
    ("orange", (255, 140, 0)),
    ("brown", (139, 69, 19)),
    ("beige", (225, 205, 160)),
    ("yellow", (255, 230, 0)),
    ("olive", (128, 128, 0)),
    ("light green", (144, 238, 144)),
    ("green", (0, 170, 0)),
    ("dark green", (0, 90, 0)),
    ("teal", (0, 128, 128)),
    ("cyan", (0, 220, 220)),
    ("light blue", (150, 200, 255)),
    ("blue", (0, 60, 255)),
    ("dark blue", (0, 0, 139)),
    ("purple", (128, 0, 128)),
    ("violet", (150, 100, 220)),
    ("magenta", (255, 0, 255)),
)
_ANALYSIS_SIDE: Final = 64  # colours are counted on a copy at most this large
_PALETTE_SIZE: Final = 6
_MIN_SHARE: Final = 0.1  # a colour on less of the image is not mentioned (unless it's the only)


def colour_name(colour: Colour) -> str:
    """The nearest of a few basic colour names."""
    return min(_COLOUR_NAMES, key=lambda named: _distance(colour, named[1]))[0]


def _distance(a: Colour, b: Colour) -> float:
    mean_red = (a[0] + b[0]) / 2
    dr, dg, db = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return (2 + mean_red / 256) * dr * dr + 4 * dg * dg + (2 + (255 - mean_red) / 256) * db * db


def summarise(data: bytes) -> str | None:
    """What can be told of an image offline, or None when it can't be read.

    For example `640\u00d7480 PNG, mostly dark blue (#1a2b6c) and white (#f0f0f0)`.
    """
    try:
        with Image.open(io.BytesIO(data), formats=READABLE_FORMATS) as image:
            width, height = image.size
            kind = image.format or "image"
            what = f"{width}\u00d7{height} {_FORMAT_LABELS.get(kind, kind)}"
            frames = getattr(image, "n_frames", 1)
            if isinstance(frames, int) and frames > 1:
                what += f" (animated, {frames} frames)"
            if width * height > MAX_DECODED_PIXELS:
                return f"{what}, too large to look at its colours"
            transparent = image.has_transparency_data
            image.thumbnail((_ANALYSIS_SIDE, _ANALYSIS_SIDE), Image.Resampling.BILINEAR)
            small = opaque(image, WHITE)
    except UNREADABLE:
        return None
    summary = f"{what}, {_colour_phrase(small)}"
    if transparent:
        summary += " (transparent parts counted as white)"
    return summary


def _colour_phrase(image: Image.Image) -> str:
    quantized = image.quantize(colors=_PALETTE_SIZE, method=Image.Quantize.MEDIANCUT)
    palette = quantized.getpalette() or []
    counts = quantized.getcolors(_PALETTE_SIZE) or []
    total = image.width * image.height
    # One entry per name, with the hex of its most common shade.
    named: dict[str, tuple[int, Colour]] = {}
    for count, index in sorted(counts, reverse=True):
        if not isinstance(index, int):  # a "P" image counts palette indexes
            continue
        colour = (palette[3 * index], palette[3 * index + 1], palette[3 * index + 2])
        name = colour_name(colour)
        seen, first = named.get(name, (0, colour))
        named[name] = (seen + count, first)
    ranked = sorted(named.items(), key=lambda item: item[1][0], reverse=True)
    main = [item for item in ranked[:3] if item[1][0] >= _MIN_SHARE * total] or ranked[:1]
    parts = [f"{name} (#{r:02x}{g:02x}{b:02x})" for name, (_, (r, g, b)) in main]
    if len(parts) == 1:
        only = main[0][1][0] >= 0.98 * total
        return f"{'entirely' if only else 'mostly'} {parts[0]}"
    return "mostly " + ", ".join(parts[:-1]) + " and " + parts[-1]
