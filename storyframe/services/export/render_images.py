"""The pictures of an export, drawn with Pillow: a frame's image read from disk as people see it
(turned as its EXIF says, transparency laid on a background), fitted into a picture of the
video's size, and a caption burned into its lower part."""

from __future__ import annotations

import functools
import math
from typing import Final

from PIL import Image, ImageDraw, ImageFont

from storyframe.services.export.render_fonts import REGULAR_FONT, glyphs
from storyframe.services.export.render_text import drawable, wrapped
from storyframe.services.export.sheets import Fit, RenderFailed, SheetFrame
from storyframe.services.image_files import REDUCING_GAP, UNREADABLE, for_webp, oriented

Colour = tuple[int, int, int]
BLACK: Final[Colour] = (0, 0, 0)
WHITE: Final[Colour] = (255, 255, 255)

_ORIENTATION: Final = 0x0112
_TURNED: Final = frozenset({5, 6, 7, 8})  # the orientations that swap width and height


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image (1: as stored). A PNG's EXIF is looked for only
    before its pixels, where the image has not to be decoded to find it."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    orientation = image.getexif().get(_ORIENTATION, 1)
    return orientation if isinstance(orientation, int) else 1


def shown_size(frame: SheetFrame) -> tuple[int, int]:
    """The size of the frame's image as people see it: width and height swapped when its EXIF
    orientation turns it a quarter. Reads the file's headers only."""
    try:
        with Image.open(frame.image) as image:
            turned = _orientation(image) in _TURNED
            width, height = image.size
    except UNREADABLE as error:
        raise RenderFailed(
            f"frame {frame.number}: unreadable image: {error}", frame.number
        ) from None
    return (height, width) if turned else (width, height)


def load_picture(frame: SheetFrame, background: Colour, at_least: tuple[int, int]) -> Image.Image:
    """The frame's image in RGB, turned as its EXIF says, with any transparency laid on
    `background`. A JPEG is decoded at a reduced scale when it is still at least `at_least`
    (width, height, as shown) that way, which saves most of the work for a large photo."""
    try:
        with Image.open(frame.image) as opened:
            turned = _orientation(opened) in _TURNED
            want = (at_least[1], at_least[0]) if turned else at_least
            if opened.format == "JPEG":
                opened.draft("RGB", (max(1, want[0]), max(1, want[1])))
            opened.load()
            image = for_webp(oriented(opened) if turned else opened)
    except UNREADABLE as error:
        raise RenderFailed(
            f"frame {frame.number}: unreadable image: {error}", frame.number
        ) from None
    if image.mode == "RGB":
        return image
    flat = Image.new("RGB", image.size, background)
    flat.paste(image, mask=image.getchannel("A"))
    return flat


def cover_scale(size: tuple[int, int], box: tuple[int, int], fit: Fit) -> float:
    """How much an image of `size` is scaled to fit inside `box` (LETTERBOX) or to cover it
    (CROP)."""
    scales = (box[0] / size[0], box[1] / size[1])
    return max(scales) if fit is Fit.CROP else min(scales)


def fitted(image: Image.Image, size: tuple[int, int], fit: Fit) -> Image.Image:
    """A picture of exactly `size`: the image scaled to fit inside it on black (LETTERBOX), or
    scaled to cover it and cut evenly on the overflowing sides (CROP)."""
    width, height = size
    scale = cover_scale(image.size, size, fit)
    if fit is Fit.CROP:
        seen_w, seen_h = width / scale, height / scale
        left, top = (image.width - seen_w) / 2, (image.height - seen_h) / 2
        if image.size == size:
            return image
        return image.resize(
            size,
            Image.Resampling.LANCZOS,
            box=(left, top, left + seen_w, top + seen_h),
            reducing_gap=REDUCING_GAP,
        )
    inner = (
        max(1, min(width, round(image.width * scale))),
        max(1, min(height, round(image.height * scale))),
    )
    if inner != image.size:
        image = image.resize(inner, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    if inner == size:
        return image
    canvas = Image.new("RGB", size, BLACK)
    canvas.paste(image, ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas


# --- captions burned into the picture ----------------------------------------------------------

CAPTION_SIZE: Final = 0.045
"""The caption's font size, as a share of the picture's height (49 px at 1080 lines)."""
CAPTION_LINES: Final = 3
CAPTION_SHADE: Final = 0.6
"""How dark the band behind a caption is: 0 leaves the picture, 1 is black."""


@functools.cache
def caption_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(REGULAR_FONT), size)


def caption_band(size: tuple[int, int], caption: str) -> tuple[tuple[int, int, int, int], int]:
    """Where a caption's band lies in a picture of `size` (left, top, right, bottom) and the
    font size: full width, above a margin at the bottom, as tall as its lines."""
    width, height = size
    font_size = max(8, round(height * CAPTION_SIZE))
    lines = wrapped(caption, width * 0.9, caption_font(font_size).getlength, CAPTION_LINES)
    line_height = math.ceil(font_size * 1.25)
    padding = font_size // 2
    bottom = height - round(height * 0.05)
    top = max(0, bottom - len(lines) * line_height - 2 * padding)
    return (0, top, width, bottom), font_size


def burn_caption(picture: Image.Image, caption: str) -> None:
    """Draw `caption` on `picture` in place: white text, centred, on a dark translucent band
    across the lower part of the picture. What the typeface lacks shows as U+FFFD (�)."""
    caption = drawable(caption, glyphs())
    (left, top, right, bottom), font_size = caption_band(picture.size, caption)
    font = caption_font(font_size)
    lines = wrapped(caption, picture.width * 0.9, font.getlength, CAPTION_LINES)
    band = picture.crop((left, top, right, bottom))
    picture.paste(Image.blend(band, Image.new("RGB", band.size, BLACK), CAPTION_SHADE), (0, top))
    draw = ImageDraw.Draw(picture)
    line_height = math.ceil(font_size * 1.25)
    y = top + font_size // 2 + line_height // 2
    for line in lines:
        draw.text((picture.width / 2, y), line, fill=WHITE, font=font, anchor="mm")
        y += line_height
