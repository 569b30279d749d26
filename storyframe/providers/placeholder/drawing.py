"""The drawing of a placeholder image: its background, badge, prompt, caption and the strip of
reference thumbnails, and the PNG with its metadata."""

from __future__ import annotations

import colorsys
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageDraw, ImageFont, ImageOps, PngImagePlugin

from storyframe.domain.image_provider import (
    Reference,
)
from storyframe.providers.placeholder.shared import (
    MAX_DECODED_PIXELS,
    READABLE_FORMATS,
    UNREADABLE,
    WHITE,
    Colour,
    Font,
    opaque,
)
from storyframe.providers.placeholder.text import displayable, fit_line, metadata_text, utf8, wrap

SOFTWARE: Final = "Storyframe placeholder"
"""The PNG `Software` text of every placeholder image."""

_MAX_DESCRIPTION: Final = 2000  # characters of the prompt kept in the PNG metadata
_MAX_REFERENCES: Final = 16  # references decoded for the strip; any more are left out
_PNG_COMPRESS_LEVEL: Final = 1  # 2x faster than the default 6, for 10-20% larger files
_PREVIEW_DETAIL: Final = (12, 32, 96)
"""Pixels along the longer side of the picture each preview shows, the last the most; a call
with fewer previews takes the most detailed ones."""
_PREVIEW_SIDE: Final = 256  # the longer side of a preview, blurred up from its detail
_PREVIEW_QUALITY: Final = 70

_SOFT_WHITE: Final = (235, 235, 240)
_INK: Final = (20, 20, 28)
_NEUTRAL: Final = (128, 128, 128)


@dataclass(frozen=True, slots=True)
class _Box:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything goes on an image of one size; the same for every image of a call."""

    width: int
    height: int
    margin: int
    label_size: int
    caption_size: int
    prompt_size: int
    footer_size: int
    badge: _Box  # the "PLACEHOLDER" label
    panel: _Box  # the dark panel behind caption and prompt
    strip: _Box  # the row of reference thumbnails
    footer_y: int  # top of the "image k" line

    @property
    def thumb_box(self) -> tuple[int, int]:
        """The largest a reference thumbnail may be: square-ish, wider ones up to 16:9."""
        return self.strip.height * 16 // 9, self.strip.height

    @staticmethod
    def of(width: int, height: int, *, strip: bool) -> Layout:
        """The layout of a `width` x `height` image; with room for references if `strip`."""
        side = min(width, height)
        margin = max(8, side * 6 // 100)
        gap = max(4, side * 3 // 100)
        label_size = max(14, side * 9 // 100)
        caption_size = max(11, side * 55 // 1000)
        prompt_size = max(10, side * 38 // 1000)
        footer_size = max(10, side * 4 // 100)
        badge_height = label_size * 3 // 2
        badge = _Box(margin, margin, width - margin, margin + badge_height)
        footer_y = height - margin - footer_size
        strip_height = max(24, side * 14 // 100)
        strip_box = _Box(margin, footer_y - gap - strip_height, width - margin, footer_y - gap)
        panel_bottom = strip_box.top - gap if strip else footer_y - gap
        panel = _Box(margin, badge.bottom + gap, width - margin, panel_bottom)
        return Layout(
            width=width,
            height=height,
            margin=margin,
            label_size=label_size,
            caption_size=caption_size,
            prompt_size=prompt_size,
            footer_size=footer_size,
            badge=badge,
            panel=panel,
            strip=strip_box,
            footer_y=footer_y,
        )


def render(
    layout: Layout,
    *,
    prompt: str,
    caption: str,
    number: int,
    thumbnails: Sequence[Image.Image],
    nonce: bytes,
    hue: float,
    previews: int = 0,
) -> tuple[bytes, list[bytes]]:
    """One placeholder PNG, and `previews` low-detail JPEGs of the same picture, coarsest
    first, the last the most detailed: what a model streaming partial images would show.
    Synchronous and CPU-bound: run it in a worker thread."""
    image = _draw(
        layout,
        prompt=prompt,
        caption=caption,
        number=number,
        thumbnails=thumbnails,
        nonce=nonce,
        hue=hue,
    )
    levels = _PREVIEW_DETAIL[max(0, len(_PREVIEW_DETAIL) - previews) :] if previews > 0 else ()
    return _png(image, prompt=prompt, caption=caption), [_preview(image, side) for side in levels]


def _preview(image: Image.Image, detail: int) -> bytes:
    """The picture as if rendered with only `detail` pixels along its longer side: shrunk that
    far, then blown up (smoothly, so blurred) to at most _PREVIEW_SIDE, as a JPEG."""
    scale = detail / max(image.width, image.height)
    tiny = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.BOX,
    )
    scale = min(1.0, _PREVIEW_SIDE / max(image.width, image.height))
    shown = tiny.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.BILINEAR,
    )
    buffer = io.BytesIO()
    shown.save(buffer, format="JPEG", quality=_PREVIEW_QUALITY)
    return buffer.getvalue()


def _draw(
    layout: Layout,
    *,
    prompt: str,
    caption: str,
    number: int,
    thumbnails: Sequence[Image.Image],
    nonce: bytes,
    hue: float,
) -> Image.Image:
    seed = hashlib.sha256(b"\0".join((utf8(prompt), str(number).encode(), nonce))).digest()
    image = _background(layout.width, layout.height, seed, hue)
    draw = ImageDraw.Draw(image)
    _draw_badge(image, draw, layout)
    _draw_text(image, draw, layout, displayable(prompt), displayable(caption))
    _draw_strip(image, draw, layout, thumbnails)
    footer = ImageFont.load_default(size=layout.footer_size)
    draw.text(
        (layout.margin, layout.footer_y),
        f"image {number} \u00b7 {layout.width}x{layout.height}",
        font=footer,
        fill=WHITE,
        stroke_width=max(1, layout.footer_size // 20),
        stroke_fill=_INK,
    )
    return image


def _png(image: Image.Image, *, prompt: str, caption: str) -> bytes:
    """The picture as a PNG, with the metadata that marks it a placeholder."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE)
    info.add_text("Description", metadata_text(prompt)[:_MAX_DESCRIPTION])
    if caption:
        info.add_text("Title", metadata_text(caption)[:_MAX_DESCRIPTION])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=_PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _background(width: int, height: int, seed: bytes, hue: float) -> Image.Image:
    """A smooth four-corner gradient around `hue` with a few rings on it, chosen by `seed`."""
    corners = [
        _hsv(hue + (seed[1 + i] - 128) / 2000, 0.45 + seed[5 + i] / 600, 0.5 + seed[9 + i] / 800)
        for i in range(4)
    ]
    tiny = Image.new("RGB", (2, 2))
    tiny.putdata(corners)
    image = tiny.resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    ring = _hsv(hue + 0.5, 0.25, 0.85)
    for i in range(5):
        x = seed[13 + i] * width // 255
        y = seed[18 + i] * height // 255
        radius = side // 10 + seed[23 + i] * side // 600
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius),
            outline=ring,
            width=max(2, side // 90),
        )
    return image


def _hsv(hue: float, saturation: float, value: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, min(saturation, 1.0), min(value, 1.0))
    return round(r * 255), round(g * 255), round(b * 255)


def _draw_badge(image: Image.Image, draw: ImageDraw.ImageDraw, layout: Layout) -> None:
    badge = layout.badge
    radius = badge.height // 4
    draw.rounded_rectangle(
        (badge.left, badge.top, badge.right - 1, badge.bottom - 1), radius, fill=_INK
    )
    font = ImageFont.load_default(size=layout.label_size)
    text = fit_line("PLACEHOLDER", font, badge.width - 2 * radius)
    draw.text(
        ((badge.left + badge.right) / 2, (badge.top + badge.bottom) / 2),
        text,
        font=font,
        fill=WHITE,
        anchor="mm",
    )


def _draw_text(
    image: Image.Image, draw: ImageDraw.ImageDraw, layout: Layout, prompt: str, caption: str
) -> None:
    panel = layout.panel
    if panel.height <= 0:
        return
    _darken(image, panel, radius=layout.margin // 2)
    padding = max(6, layout.prompt_size * 3 // 4)
    inner = _Box(
        panel.left + padding, panel.top + padding, panel.right - padding, panel.bottom - padding
    )
    y = inner.top
    if caption:
        font = ImageFont.load_default(size=layout.caption_size)
        if y + layout.caption_size <= inner.bottom:
            draw.text((inner.left, y), fit_line(caption, font, inner.width), font=font, fill=WHITE)
            y += layout.caption_size * 3 // 2
    font = ImageFont.load_default(size=layout.prompt_size)
    line_height = layout.prompt_size * 5 // 4
    max_lines = (inner.bottom - y + line_height - layout.prompt_size) // line_height
    for line in wrap(prompt, font, inner.width, max_lines):
        draw.text((inner.left, y), line, font=font, fill=_SOFT_WHITE)
        y += line_height


def _darken(image: Image.Image, box: _Box, *, radius: int) -> None:
    """Darken `box` of the image, with rounded corners, so white text reads on any background."""
    area = (box.left, box.top, box.right, box.bottom)
    region = image.crop(area)
    shaded = Image.blend(region, Image.new("RGB", region.size, _INK), 0.62)
    mask = Image.new("L", region.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (0, 0, region.width - 1, region.height - 1), radius, fill=255
    )
    image.paste(shaded, area[:2], mask)


def _draw_strip(
    image: Image.Image,
    draw: ImageDraw.ImageDraw,
    layout: Layout,
    thumbnails: Sequence[Image.Image],
) -> None:
    """The references, left to right, each framed in white; "+N" for those that don't fit."""
    if not thumbnails:
        return
    strip = layout.strip
    gap = max(4, strip.height // 10)
    border = max(1, strip.height // 40)
    more_font = ImageFont.load_default(size=max(10, strip.height * 2 // 5))
    x = strip.left
    for shown, thumbnail in enumerate(thumbnails):
        rest = len(thumbnails) - shown - 1
        room = strip.right - x
        if rest:  # keep room for "+N" after this one, in case the next doesn't fit
            room -= gap + round(more_font.getlength(f"+{rest}"))
        if thumbnail.width + 2 * border > room:
            _draw_more(draw, x, strip, len(thumbnails) - shown, more_font)
            return
        top = strip.top + (strip.height - thumbnail.height) // 2
        draw.rectangle(
            (
                x,
                top - border,
                x + thumbnail.width + 2 * border - 1,
                top + thumbnail.height + border - 1,
            ),
            fill=WHITE,
        )
        image.paste(thumbnail, (x + border, top))
        x += thumbnail.width + 2 * border + gap


def _draw_more(draw: ImageDraw.ImageDraw, x: int, strip: _Box, count: int, font: Font) -> None:
    draw.text(
        (x, (strip.top + strip.bottom) / 2),
        f"+{count}",
        font=font,
        fill=WHITE,
        anchor="lm",
        stroke_width=1,
        stroke_fill=_INK,
    )


def reference_thumbnails(
    references: Sequence[Reference], box: tuple[int, int]
) -> list[Image.Image]:
    """The references that decode, each as an RGB image fitting `box`; the others are skipped."""
    thumbnails = []
    for reference in references[:_MAX_REFERENCES]:
        thumbnail = _thumbnail(reference.data, box)
        if thumbnail is not None:
            thumbnails.append(thumbnail)
    return thumbnails


def _thumbnail(data: bytes, box: tuple[int, int]) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data), formats=READABLE_FORMATS) as opened:
            if opened.width * opened.height > MAX_DECODED_PIXELS:
                return None
            opened.thumbnail(box, Image.Resampling.BILINEAR, reducing_gap=2.0)
            image = _oriented(opened)
            image.thumbnail(box, Image.Resampling.BILINEAR)  # again, if turned to portrait
            return opaque(image, _NEUTRAL)
    except UNREADABLE:
        return None


def _oriented(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except UNREADABLE:  # broken EXIF: the pixels are still fine
        return image
