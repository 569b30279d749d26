"""What the placeholder's parts share: the formats it reads, its colours and fonts' types."""

from __future__ import annotations

import struct
from typing import Final

from PIL import Image, ImageFont

MAX_DECODED_PIXELS: Final = 50_000_000
"""Larger images are not decoded, whatever Pillow's own limit (uploads are refused above 50 MP)."""
READABLE_FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF")
"""The formats read from bytes: those image models take. Not every format Pillow knows: some
(EPS) hand the data to external programs."""
# What Pillow raises for bytes that are not a (whole) image, or too large a one. The warning is
# an exception only where warnings are errors (the tests); elsewhere the pixel check catches it.
UNREADABLE: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)

ELLIPSIS: Final = "\u2026"
WHITE: Final = (255, 255, 255)

Colour = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def opaque(image: Image.Image, background: Colour) -> Image.Image:
    """RGB, any transparency flattened onto `background`."""
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*background, 255))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    return image.convert("RGB")
