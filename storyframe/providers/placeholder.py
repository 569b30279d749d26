"""The provider used without an OpenAI key: placeholder images drawn offline with Pillow.

Each image says plainly that it is a placeholder and shows what it stands for: the prompt, the
caption (a frame's title), its position in the generation and thumbnails of the reference images
that were sent. Its background comes from a hash of the prompt, the position and a random nonce,
and its hue steps round the colour wheel by the golden ratio from one image to the next, so no two
images look alike, not even two of the same prompt made one after the other. The PNG's metadata
marks it too: `Software` is "Storyframe placeholder", `Description` the prompt and `Title` the
caption.

`describe` cannot look at images without a vision model; it says so, and reports what can be
known offline: each image's size, format and dominant colours.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import secrets
import struct
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageDraw, ImageFont, ImageOps, PngImagePlugin

from storyframe.services.models import PLACEHOLDER_MODEL
from storyframe.services.prompts import DESCRIBE_REFERENCES
from storyframe.services.providers import (
    CallResult,
    Description,
    ImageCall,
    Produced,
    Reference,
    RemoteModel,
)

SOFTWARE: Final = "Storyframe placeholder"
"""The PNG `Software` text of every placeholder image."""

_DEFAULT_SIDE: Final = 1024
_MIN_SIDE: Final = 256
_MAX_SIDE: Final = 2048
_MAX_DESCRIPTION: Final = 2000  # characters of the prompt kept in the PNG metadata
_MAX_QUESTION: Final = 1000  # characters of a describe instruction echoed back
_MAX_SHOWN_PROMPT: Final = 4000  # characters of the prompt considered for drawing at all
_MAX_REFERENCES: Final = 16  # references decoded for the strip; any more are left out
# Larger images are not decoded, whatever Pillow's own limit (uploads are refused above 50 MP).
_MAX_DECODED_PIXELS: Final = 50_000_000
# The formats read from bytes: those image models take. Not every format Pillow knows: some
# (EPS) hand the data to external programs.
_READABLE_FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF")
_FORMAT_LABELS: Final = {"WEBP": "WebP"}
# What Pillow raises for bytes that are not a (whole) image, or too large a one. The warning is
# an exception only where warnings are errors (the tests); elsewhere the pixel check catches it.
_UNREADABLE: Final = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)
_PNG_COMPRESS_LEVEL: Final = 1  # 2x faster than the default 6, for 10-20% larger files
_ELLIPSIS: Final = "\u2026"
_GOLDEN_STEP: Final = 0.6180339887498949  # hue step between images: 1/phi, the widest spread

_WHITE: Final = (255, 255, 255)
_SOFT_WHITE: Final = (235, 235, 240)
_INK: Final = (20, 20, 28)
_NEUTRAL: Final = (128, 128, 128)

Colour = tuple[int, int, int]
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class PlaceholderProvider:
    """An `ImageProvider` that needs no network and no key."""

    def __init__(self) -> None:
        # Where the next image's hue sits on the colour wheel; see `_take_hue`.
        self._hue = secrets.randbelow(1 << 16) / (1 << 16)

    def _take_hue(self) -> float:
        """The hue of the next image: consecutive images lie at least 0.38 of the wheel apart."""
        hue = self._hue
        self._hue = (hue + _GOLDEN_STEP) % 1.0
        return hue

    @property
    def placeholder(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return "placeholder"

    async def generate(self, call: ImageCall) -> CallResult:
        if call.count < 1:
            return CallResult(images=[], usage=None)
        width, height = parse_size(call.size)
        layout = _Layout.of(width, height, strip=bool(call.references))
        thumbnails = (
            await asyncio.to_thread(_thumbnails, call.references, layout.thumb_box)
            if call.references
            else []
        )
        images = await asyncio.gather(
            *(
                asyncio.to_thread(
                    _render,
                    layout,
                    prompt=call.prompt,
                    caption=call.caption,
                    number=call.first_index + i + 1,
                    thumbnails=thumbnails,
                    nonce=secrets.token_bytes(16),
                    hue=hue,
                )
                for i, hue in enumerate([self._take_hue() for _ in range(call.count)])
            )
        )
        return CallResult(images=[Produced(data=data) for data in images], usage=None)

    async def describe(
        self, images: Sequence[Reference], instruction: str, model: str
    ) -> Description:
        if instruction == DESCRIBE_REFERENCES:
            # appended to a generation's prompt: the instruction is the server's, not the user's
            lines = [
                "Placeholder description: no vision model is configured, so only each image's "
                "size, format and main colours are given."
            ]
        else:
            lines = [
                "Placeholder analysis: no vision model is configured, so only each image's size, "
                "format and main colours are reported; the question is not answered."
            ]
            question = " ".join(instruction.split())
            if len(question) > _MAX_QUESTION:
                question = question[: _MAX_QUESTION - 1].rstrip() + _ELLIPSIS
            if question:
                lines.append(f"Question: {question}")
        summaries = await asyncio.gather(
            *(asyncio.to_thread(_summarise, image.data) for image in images)
        )
        if not summaries:
            lines.append("No images were given.")
        for number, summary in enumerate(summaries, start=1):
            lines.append(f"Image {number}: {summary or 'not a readable image'}.")
        return Description(text="\n".join(lines), model=PLACEHOLDER_MODEL, usage=None)

    async def models(self) -> list[RemoteModel]:
        return [RemoteModel(PLACEHOLDER_MODEL)]

    async def aclose(self) -> None:
        return None


def parse_size(size: str) -> tuple[int, int]:
    """The pixels of a size "WxH", each side clamped to 256..2048; 1024x1024 for "auto"."""
    width, separator, height = size.strip().lower().partition("x")
    if not (separator and width.isdecimal() and height.isdecimal()):
        return _DEFAULT_SIDE, _DEFAULT_SIDE
    return _clamp(int(width)), _clamp(int(height))


def _clamp(side: int) -> int:
    return max(_MIN_SIDE, min(_MAX_SIDE, side))


# --- drawing -----------------------------------------------------------------------------------


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
class _Layout:
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
    def of(width: int, height: int, *, strip: bool) -> _Layout:
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
        return _Layout(
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


def _render(
    layout: _Layout,
    *,
    prompt: str,
    caption: str,
    number: int,
    thumbnails: Sequence[Image.Image],
    nonce: bytes,
    hue: float,
) -> bytes:
    """One placeholder PNG. Synchronous and CPU-bound: run it in a worker thread."""
    seed = hashlib.sha256(b"\0".join((_utf8(prompt), str(number).encode(), nonce))).digest()
    image = _background(layout.width, layout.height, seed, hue)
    draw = ImageDraw.Draw(image)
    _draw_badge(image, draw, layout)
    _draw_text(image, draw, layout, _displayable(prompt), _displayable(caption))
    _draw_strip(image, draw, layout, thumbnails)
    footer = ImageFont.load_default(size=layout.footer_size)
    draw.text(
        (layout.margin, layout.footer_y),
        f"image {number} \u00b7 {layout.width}x{layout.height}",
        font=footer,
        fill=_WHITE,
        stroke_width=max(1, layout.footer_size // 20),
        stroke_fill=_INK,
    )
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE)
    info.add_text("Description", _metadata_text(prompt)[:_MAX_DESCRIPTION])
    if caption:
        info.add_text("Title", _metadata_text(caption)[:_MAX_DESCRIPTION])
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


def _draw_badge(image: Image.Image, draw: ImageDraw.ImageDraw, layout: _Layout) -> None:
    badge = layout.badge
    radius = badge.height // 4
    draw.rounded_rectangle(
        (badge.left, badge.top, badge.right - 1, badge.bottom - 1), radius, fill=_INK
    )
    font = ImageFont.load_default(size=layout.label_size)
    text = _fit_line("PLACEHOLDER", font, badge.width - 2 * radius)
    draw.text(
        ((badge.left + badge.right) / 2, (badge.top + badge.bottom) / 2),
        text,
        font=font,
        fill=_WHITE,
        anchor="mm",
    )


def _draw_text(
    image: Image.Image, draw: ImageDraw.ImageDraw, layout: _Layout, prompt: str, caption: str
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
            draw.text(
                (inner.left, y), _fit_line(caption, font, inner.width), font=font, fill=_WHITE
            )
            y += layout.caption_size * 3 // 2
    font = ImageFont.load_default(size=layout.prompt_size)
    line_height = layout.prompt_size * 5 // 4
    max_lines = (inner.bottom - y + line_height - layout.prompt_size) // line_height
    for line in _wrap(prompt, font, inner.width, max_lines):
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
    layout: _Layout,
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
            fill=_WHITE,
        )
        image.paste(thumbnail, (x + border, top))
        x += thumbnail.width + 2 * border + gap


def _draw_more(draw: ImageDraw.ImageDraw, x: int, strip: _Box, count: int, font: _Font) -> None:
    draw.text(
        (x, (strip.top + strip.bottom) / 2),
        f"+{count}",
        font=font,
        fill=_WHITE,
        anchor="lm",
        stroke_width=1,
        stroke_fill=_INK,
    )


def _thumbnails(references: Sequence[Reference], box: tuple[int, int]) -> list[Image.Image]:
    """The references that decode, each as an RGB image fitting `box`; the others are skipped."""
    thumbnails = []
    for reference in references[:_MAX_REFERENCES]:
        thumbnail = _thumbnail(reference.data, box)
        if thumbnail is not None:
            thumbnails.append(thumbnail)
    return thumbnails


def _thumbnail(data: bytes, box: tuple[int, int]) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data), formats=_READABLE_FORMATS) as opened:
            if opened.width * opened.height > _MAX_DECODED_PIXELS:
                return None
            opened.thumbnail(box, Image.Resampling.BILINEAR, reducing_gap=2.0)
            image = _oriented(opened)
            image.thumbnail(box, Image.Resampling.BILINEAR)  # again, if turned to portrait
            return _opaque(image, _NEUTRAL)
    except _UNREADABLE:
        return None


def _oriented(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except _UNREADABLE:  # broken EXIF: the pixels are still fine
        return image


def _opaque(image: Image.Image, background: Colour) -> Image.Image:
    """RGB, any transparency flattened onto `background`."""
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*background, 255))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    return image.convert("RGB")


# --- text --------------------------------------------------------------------------------------

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


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def _metadata_text(text: str) -> str:
    """`text` as PNG text can hold it: valid Unicode, no NUL."""
    return _utf8(text).decode("utf-8").replace("\0", "")


def _displayable(text: str) -> str:
    """`text` for Pillow's default font (Aileron, mostly ASCII): accents dropped ("é" → "e"),
    dashes made ASCII, control characters removed, whitespace collapsed. Characters the font
    lacks still show, as boxes."""
    text = _metadata_text(text[:_MAX_SHOWN_PROMPT]).translate(_ASCII_PUNCTUATION)
    folded = unicodedata.normalize("NFKD", text)
    kept = "".join(
        " " if char.isspace() else char
        for char in folded
        if char.isspace() or not unicodedata.category(char).startswith(("C", "M"))
    )
    return " ".join(kept.split())


def _fits(text: str, font: _Font, width: int) -> bool:
    return font.getlength(text) <= width


def _fit_line(text: str, font: _Font, width: int) -> str:
    """`text` as one line, cut with an ellipsis when it is too wide."""
    if _fits(text, font, width):
        return text
    return _with_ellipsis(text, font, width)


def _with_ellipsis(text: str, font: _Font, width: int) -> str:
    cut = _longest_prefix(text, font, width, suffix=_ELLIPSIS)
    return text[:cut].rstrip() + _ELLIPSIS


def _longest_prefix(text: str, font: _Font, width: int, suffix: str = "") -> int:
    """The length of the longest prefix of `text` that fits in `width` followed by `suffix`."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(text[:middle] + suffix, font, width):
            low = middle
        else:
            high = middle - 1
    return low


def _wrap(text: str, font: _Font, width: int, max_lines: int) -> list[str]:
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


# --- describing --------------------------------------------------------------------------------

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


def _summarise(data: bytes) -> str | None:
    """What can be told of an image offline, or None when it can't be read.

    For example `640\u00d7480 PNG, mostly dark blue (#1a2b6c) and white (#f0f0f0)`.
    """
    try:
        with Image.open(io.BytesIO(data), formats=_READABLE_FORMATS) as image:
            width, height = image.size
            kind = image.format or "image"
            what = f"{width}\u00d7{height} {_FORMAT_LABELS.get(kind, kind)}"
            frames = getattr(image, "n_frames", 1)
            if isinstance(frames, int) and frames > 1:
                what += f" (animated, {frames} frames)"
            if width * height > _MAX_DECODED_PIXELS:
                return f"{what}, too large to look at its colours"
            transparent = image.has_transparency_data
            image.thumbnail((_ANALYSIS_SIDE, _ANALYSIS_SIDE), Image.Resampling.BILINEAR)
            small = _opaque(image, _WHITE)
    except _UNREADABLE:
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
