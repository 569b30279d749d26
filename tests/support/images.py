"""Images the tests make: encoded with Pillow, forged headers, and what storage reports of one."""

from __future__ import annotations

import hashlib
import io
import itertools
import struct
import zlib

from PIL import Image

from storyframe.services.image_places import StoredImage

_serial = itertools.count(1)


def stored_image(
    key: str | None = None,
    *,
    base_url: str = "https://media.test/",
    url: str | None = None,
    width: int = 1024,
    height: int = 768,
    content_type: str = "image/png",
    byte_size: int = 2048,
    thumbnail_url: str | None = None,
    checksum: str | None = None,
) -> StoredImage:
    """What blob storage would report of a file it holds under `key` (one of its own when
    None), served at `base_url` + key unless a `url` is given."""
    key = key or f"image-{next(_serial)}.png"
    return StoredImage(
        url=url or f"{base_url}{key}",
        storage_key=key,
        width=width,
        height=height,
        content_type=content_type,
        byte_size=byte_size,
        thumbnail_url=thumbnail_url,
        checksum=checksum,
    )


def image_bytes(
    fmt: str = "PNG", color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)
) -> bytes:
    """A plain image of one colour, encoded in `fmt`."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header declares `width` x `height` pixels, with almost
    no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
