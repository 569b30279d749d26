"""Checks on uploaded image bytes, and the WebP thumbnail made from them.

Pure domain code: it reads a file that is already on disk and either describes it or refuses it
with an `ImageRefused` that says why. The type is judged from the bytes alone, never from a file
name or a declared content type, and only PNG, JPEG and WebP are accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from PIL import Image, ImageOps

from storyframe.domain.errors import ErrorCode
from storyframe.services.decoding import DecodeSlots, after_decoding

_HASH_CHUNK: Final = 1024 * 1024
# `Image.thumbnail` first shrinks by a whole factor (cheap) to within this factor of the target,
# then resamples properly; 2.0 is Pillow's default and all but indistinguishable from a fair resize.
REDUCING_GAP: Final = 2.0
_THUMBNAIL_QUALITY: Final = 80
# What Pillow raises while reading headers or decoding data that is not what it should be.
UNREADABLE: Final = (OSError, SyntaxError, ValueError, EOFError, struct.error)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    thumbnail_size: int = 512  # longest side of a thumbnail, px

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "thumbnail_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ImageLimits.{name} must be positive")


@dataclass(frozen=True, slots=True)
class Inspected:
    content_type: str  # "image/png" | "image/jpeg" | "image/webp"
    extension: str  # "png" | "jpg" | "webp"
    width: int  # of the stored pixels, before any EXIF orientation
    height: int
    byte_size: int
    checksum: str  # SHA-256 hex of the bytes
    thumbnail: bytes  # a WebP whose longest side is at most thumbnail_size (never upscaled)


class ImageRefused(Exception):
    """The file is not an image we accept. `reason` is meant for the person who uploaded it."""

    def __init__(self, reason: str, code: ErrorCode) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class _Format:
    pillow: str  # the name Pillow registers the format under
    label: str  # the name people know it by
    content_type: str
    extension: str


_PNG: Final = _Format("PNG", "PNG", "image/png", "png")
_JPEG: Final = _Format("JPEG", "JPEG", "image/jpeg", "jpg")
_WEBP: Final = _Format("WEBP", "WebP", "image/webp", "webp")


def inspect_image(path: Path, limits: ImageLimits) -> Inspected:
    """Check the image file at `path` and make its thumbnail; raise `ImageRefused` if refused.

    The checks, in order, each refusing with its own code:

    1. more than `limits.max_bytes` bytes: TOO_LARGE;
    2. bytes that do not start with a PNG, JPEG or WebP signature (an empty file too):
       UNSUPPORTED_TYPE;
    3. a header declaring more than `limits.max_pixels` pixels (or more than Pillow's own
       `Image.MAX_IMAGE_PIXELS`, when that is lower): TOO_LARGE, found before any pixel is decoded;
    4. pixel data that does not decode to the end (truncated, corrupt): CORRUPT_IMAGE.

    `width` and `height` are those of the pixels as stored, before EXIF orientation is applied:
    a portrait photo stored landscape with "rotate 90°" in its EXIF reports its landscape size.
    The thumbnail, though, is oriented as the image is meant to be seen. Animated images are
    judged and thumbnailed by their first frame.

    Synchronous and CPU-bound: call it in a worker thread (`inspect_image_async` does). A JPEG is
    decoded at a reduced scale (libjpeg's DCT scaling, which still reads the whole stream), so a
    large photo never takes its full size in memory; a PNG or WebP is decoded once at full size,
    and after a large one the memory it took is handed back to the operating system (glibc).
    Failing to open or read `path` itself raises the usual `OSError`.
    """
    with path.open("rb") as file:
        byte_size = os.fstat(file.fileno()).st_size
        if byte_size > limits.max_bytes:
            raise ImageRefused(
                f"the file is {byte_size:,} bytes, over the limit of {limits.max_bytes:,} bytes",
                ErrorCode.TOO_LARGE,
            )
        kind = _sniff(file.read(16))
        if kind is None:
            what = "the file is empty" if byte_size == 0 else "the file is not an image"
            raise ImageRefused(
                f"{what}: upload a PNG, JPEG or WebP image", ErrorCode.UNSUPPORTED_TYPE
            )
        with _reading(kind):
            declared = _declared_size(file, kind)
        _check_pixels(declared, limits)
        file.seek(0)
        try:
            width, height, thumbnail = _decode(file, kind, limits)
        finally:
            after_decoding(declared[0] * declared[1])
        checksum = _sha256(file)
    return Inspected(
        content_type=kind.content_type,
        extension=kind.extension,
        width=width,
        height=height,
        byte_size=byte_size,
        checksum=checksum,
        thumbnail=thumbnail,
    )


async def inspect_image_async(
    path: Path, limits: ImageLimits, slots: DecodeSlots | None = None
) -> Inspected:
    """`inspect_image` in a worker thread, so the event loop keeps serving; in one of `slots`,
    when given, so that no more images than it has are decoded at once."""
    if slots is None:
        return await asyncio.to_thread(inspect_image, path, limits)
    return await slots.run(inspect_image, path, limits)


# --- type and header ---------------------------------------------------------------------------


def _sniff(head: bytes) -> _Format | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    if head.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _WEBP
    return None


def _declared_size(file: BinaryIO, kind: _Format) -> tuple[int, int]:
    """Width and height as the header declares them, read without Pillow.

    Done before `Image.open`, which warns (or raises) about decompression bombs by itself and,
    for WebP, allocates the whole canvas while opening.
    """
    if kind is _PNG:
        return _png_size(file)
    if kind is _JPEG:
        return _jpeg_size(file)
    return _webp_size(file)


def _png_size(file: BinaryIO) -> tuple[int, int]:
    # The IHDR chunk comes first, right after the signature: length, type, width, height.
    file.seek(8)
    head = file.read(16)
    if len(head) < 16 or head[4:8] != b"IHDR":
        raise SyntaxError("PNG without an IHDR chunk")
    width, height = struct.unpack(">II", head[8:16])
    return width, height


# Start-of-frame markers, the segments that hold a JPEG's size (not DHT C4, JPG C8, DAC CC).
_JPEG_SOF: Final = frozenset({*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC})
_JPEG_NO_LENGTH: Final = frozenset({0x00, 0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI, stuffing


def _jpeg_size(file: BinaryIO) -> tuple[int, int]:
    # Walk the segments up to the start of scan, as Pillow does: skip junk between segments and
    # fill bytes, and keep the last start-of-frame seen.
    file.seek(2)
    size: tuple[int, int] | None = None
    while byte := file.read(1):
        if byte != b"\xff":
            continue
        marker = file.read(1)
        while marker == b"\xff":
            marker = file.read(1)
        if not marker:
            break
        code = marker[0]
        if code == 0xDA:  # start of scan: the headers are over
            if size is None:
                raise SyntaxError("JPEG without a start-of-frame segment")
            return size
        if code in _JPEG_NO_LENGTH:
            continue
        if code == 0xD9:
            raise SyntaxError("JPEG that ends before its image data")
        length_bytes = file.read(2)
        if len(length_bytes) < 2:
            break
        length = int.from_bytes(length_bytes, "big")
        if code in _JPEG_SOF:
            frame = file.read(5)  # precision, height, width
            if length < 7 or len(frame) < 5:
                raise SyntaxError("JPEG with a short start-of-frame segment")
            size = int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
            file.seek(length - 7, os.SEEK_CUR)
        elif length >= 2:
            file.seek(length - 2, os.SEEK_CUR)
        else:
            raise SyntaxError("JPEG segment with a bad length")
    raise SyntaxError("JPEG that ends before its image data")


def _webp_size(file: BinaryIO) -> tuple[int, int]:
    # The first chunk after "RIFF" size "WEBP" is VP8 (lossy), VP8L (lossless) or VP8X (extended).
    file.seek(0)
    head = file.read(30)
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    raise SyntaxError("WebP without a readable header")


def _pixel_limit(limits: ImageLimits) -> int:
    # Pillow warns above MAX_IMAGE_PIXELS when opening; refusing first means it never has to.
    # Read at each call, so an application that sets it differently is respected.
    pillows = Image.MAX_IMAGE_PIXELS
    return limits.max_pixels if pillows is None else min(limits.max_pixels, pillows)


def _check_pixels(size: tuple[int, int], limits: ImageLimits) -> None:
    width, height = size
    limit = _pixel_limit(limits)
    if width * height > limit:
        raise ImageRefused(
            f"the image is {width:,} x {height:,} pixels ({width * height:,}), "
            f"over the limit of {limit:,} pixels",
            ErrorCode.TOO_LARGE,
        )


# --- decoding and the thumbnail ----------------------------------------------------------------


@contextmanager
def _reading(kind: _Format) -> Iterator[None]:
    """Turn what Pillow raises about the file into refusals."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Only reached when Pillow reads a larger size than our header check did. The warning
        # arrives as an exception only where warnings are errors; it is refused all the same.
        raise ImageRefused(
            "the image has more pixels than can be accepted", ErrorCode.TOO_LARGE
        ) from error
    except UNREADABLE as error:
        raise ImageRefused(
            f"the {kind.label} image is damaged or incomplete and can't be read",
            ErrorCode.CORRUPT_IMAGE,
        ) from error


def _decode(file: BinaryIO, kind: _Format, limits: ImageLimits) -> tuple[int, int, bytes]:
    """Decode the whole (first frame of the) image once; its size, and the thumbnail made of it."""
    side = limits.thumbnail_size
    with _reading(kind):
        image = Image.open(file, formats=[kind.pillow])
    with image:
        width, height = image.size
        _check_pixels((width, height), limits)  # again, as Pillow read it: its size is decoded
        with _reading(kind):
            if kind is _JPEG:
                # Decode at 1/2, 1/4 or 1/8 scale, still at least `side` on both sides.
                image.draft("RGB", (side, side))
            image.load()
        return width, height, _thumbnail(image, side)


def _thumbnail(image: Image.Image, side: int) -> bytes:
    icc_profile = image.info.get("icc_profile")
    if image.mode in ("1", "P", "PA"):
        # Pillow resizes these only by picking pixels: shrink them roughly that way, then convert
        # (smaller, so cheaper) and resample properly below.
        rough = side * REDUCING_GAP
        image.thumbnail((rough, rough), Image.Resampling.NEAREST, reducing_gap=None)
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    image.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    image = for_webp(oriented(image))
    buffer = io.BytesIO()
    image.save(
        buffer,
        format="WEBP",
        quality=_THUMBNAIL_QUALITY,
        # Keep the colour profile when it describes RGB, so wide-gamut photos look right.
        icc_profile=icc_profile if _is_rgb_profile(icc_profile) else None,
    )
    return buffer.getvalue()


def oriented(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; unturned when its EXIF can't be read."""
    try:
        return ImageOps.exif_transpose(image)
    except UNREADABLE:
        # Broken EXIF does not make the pixels unusable. (Pillow mostly copes by itself, with a
        # "Corrupt EXIF data" UserWarning while opening, and no orientation.)
        return image


def for_webp(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency: the modes a WebP holds."""
    if image.mode.startswith("I;16"):  # 16-bit greyscale PNG: scale, don't clip, to 8 bits
        transparent = image.has_transparency_data
        image = image.point(lambda value: value / 257, "L")
        if transparent:  # the transparent value was a 16-bit one; keep it simple and opaque
            image.info.pop("transparency", None)
    if image.mode == "RGBA" or (image.mode == "RGB" and not image.has_transparency_data):
        return image
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def _is_rgb_profile(profile: object) -> bool:
    # An ICC profile's header names its colour space at bytes 16-19.
    return isinstance(profile, bytes) and profile[16:20] == b"RGB "


def _sha256(file: BinaryIO) -> str:
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(_HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()
