"""Smaller copies of images, made in a worker thread: what is sent to a model, and previews of
images still being made."""

from __future__ import annotations

import io
from typing import Final

from PIL import Image

from storyframe.domain.errors import ErrorCode
from storyframe.services.image_files import (
    REDUCING_GAP,
    UNREADABLE,
    ImageRefused,
    for_webp,
    oriented,
)

MODEL_INPUT_SIDE: Final = 2048
"""The longest side of an image sent to a model; larger ones are scaled down first."""
MODEL_INPUT_BYTES: Final = 4 * 1024 * 1024
_MODEL_JPEG_QUALITY: Final = 90


def fit_for_model(data: bytes, content_type: str) -> tuple[bytes, str]:
    """Bytes of a stored image small enough to send to a model, with their content type: the
    stored bytes themselves when they are, else a copy at most `MODEL_INPUT_SIDE` pixels on its
    longest side (PNG when it has transparency, JPEG otherwise). CPU-bound: run it in a thread.
    Raises ImageRefused when the bytes are not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if len(data) <= MODEL_INPUT_BYTES and max(image.size) <= MODEL_INPUT_SIDE:
                return data, content_type
            image.draft("RGB", (MODEL_INPUT_SIDE, MODEL_INPUT_SIDE))
            image.load()
            image.thumbnail(
                (MODEL_INPUT_SIDE, MODEL_INPUT_SIDE),
                Image.Resampling.LANCZOS,
                reducing_gap=REDUCING_GAP,
            )
            fitted = for_webp(oriented(image))
    except UNREADABLE as error:
        raise ImageRefused(f"not a readable image: {error}", ErrorCode.CORRUPT_IMAGE) from None
    buffer = io.BytesIO()
    if fitted.mode == "RGBA":
        fitted.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue(), "image/png"
    fitted.save(buffer, format="JPEG", quality=_MODEL_JPEG_QUALITY)
    return buffer.getvalue(), "image/jpeg"


PREVIEW_SIDE: Final = 512
"""The longest side of a preview of an image still being made."""
PREVIEW_MAX_PIXELS: Final = 4096 * 4096
_PREVIEW_JPEG_QUALITY: Final = 70


def make_preview(data: bytes) -> tuple[bytes, int, int]:
    """A JPEG of a partial image at most `PREVIEW_SIDE` pixels on its longest side, with its
    width and height. CPU-bound: run it in a thread. Raises ImageRefused when the bytes are not
    an image or one too large to decode."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > PREVIEW_MAX_PIXELS:
                raise ImageRefused("the preview is too large", ErrorCode.TOO_LARGE)
            image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))
            image.load()
            image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BILINEAR)
            small = image.convert("RGB")
    except UNREADABLE as error:
        raise ImageRefused(f"not a readable image: {error}", ErrorCode.CORRUPT_IMAGE) from None
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=_PREVIEW_JPEG_QUALITY)
    return buffer.getvalue(), small.width, small.height
