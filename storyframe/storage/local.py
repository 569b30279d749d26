"""Blob storage on the local disk, under the data directory, keyed by SHA-256."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path

from storyframe.domain.ports import IMAGE_EXTENSIONS, Blob, BlobStorage

FILE_EXTENSIONS = {
    "mp4": "video/mp4",
    "pdf": "application/pdf",
    "zip": "application/zip",
    "vtt": "text/vtt; charset=utf-8",
}
"""What exports are stored as, and the content type each is served with."""
CONTENT_TYPES = {
    **{ext: content_type for content_type, ext in IMAGE_EXTENSIONS.items()},
    **FILE_EXTENSIONS,
}
THUMBNAIL_SUFFIX = ".thumb.webp"
PARTIAL_PREFIX = ".tmp-"
"""A file being written, renamed to its key once whole; one a killed process left stays."""
# `ab/ab12…ef.png` or its thumbnail `ab/ab12…ef.thumb.webp`: nothing else is ever a key.
KEY_PATTERN = re.compile(r"(?P<prefix>[0-9a-f]{2})/(?P=prefix)[0-9a-f]{62}\.(png|jpg|webp)")
FILE_PATTERN = re.compile(
    r"(?P<prefix>[0-9a-f]{2})/(?P=prefix)[0-9a-f]{62}(\.png|\.jpg|\.webp|\.thumb\.webp)"
)
EXPORT_PATTERN = re.compile(r"exports/[0-9a-f]{64}\.(mp4|pdf|zip|vtt)")
"""`exports/ab12…ef.mp4`: an exported file (it has no thumbnail)."""


def key_for(checksum: str, content_type: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", checksum):
        raise ValueError("checksum must be a SHA-256 hex digest")
    return f"{checksum[:2]}/{checksum}.{IMAGE_EXTENSIONS[content_type]}"


def thumbnail_key(key: str) -> str:
    return key.rsplit(".", 1)[0] + THUMBNAIL_SUFFIX


class LocalStorage(BlobStorage):
    """Files under `root`, written atomically (a temporary file renamed into place), served by
    `storyframe.storage.media` at `<public_url>/media/<key>`."""

    def __init__(self, root: Path, public_url: str) -> None:
        self.root = root
        self._base = public_url.rstrip("/") + "/media/"

    def path_of(self, key: str) -> Path | None:
        """The file of a key or of a key's thumbnail; None for anything that is neither."""
        if not (FILE_PATTERN.fullmatch(key) or EXPORT_PATTERN.fullmatch(key)):
            return None
        return self.root / key

    def url(self, key: str) -> str:
        return self._base + key

    async def put(
        self, source: Path, *, checksum: str, content_type: str, thumbnail: bytes
    ) -> Blob:
        key = key_for(checksum, content_type)
        await asyncio.to_thread(self._put, source, key, thumbnail)
        return Blob(
            key=key,
            url=self.url(key),
            thumbnail_url=self.url(thumbnail_key(key)),
            byte_size=(self.root / key).stat().st_size,
            checksum=checksum,
        )

    async def put_file(self, source: Path, *, checksum: str, extension: str) -> Blob:
        key = f"exports/{checksum}.{extension}"
        if not EXPORT_PATTERN.fullmatch(key):
            raise ValueError(f"not a file storage keeps: {key!r}")
        await asyncio.to_thread(self._put_file, source, key)
        return Blob(
            key=key,
            url=self.url(key),
            thumbnail_url=self.url(key),
            byte_size=(self.root / key).stat().st_size,
            checksum=checksum,
        )

    def _put_file(self, source: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            with source.open("rb") as reader:
                _write_atomically(target, lambda out: shutil.copyfileobj(reader, out, 1 << 20))

    def _put(self, source: Path, key: str, thumbnail: bytes) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            with source.open("rb") as reader:
                _write_atomically(target, lambda out: shutil.copyfileobj(reader, out, 1 << 20))
        thumb = self.root / thumbnail_key(key)
        if not thumb.exists():
            _write_atomically(thumb, lambda out: out.write(thumbnail))

    async def delete(self, key: str) -> None:
        if KEY_PATTERN.fullmatch(key):
            await asyncio.to_thread(self._delete, key)
        elif EXPORT_PATTERN.fullmatch(key):
            await asyncio.to_thread((self.root / key).unlink, missing_ok=True)

    def _delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)
        (self.root / thumbnail_key(key)).unlink(missing_ok=True)

    async def keys(self) -> list[str]:
        return await asyncio.to_thread(self._keys)

    def _keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = (
            path.relative_to(self.root).as_posix()
            for pattern in ("??/*", "exports/*")
            for path in self.root.glob(pattern)
            if path.is_file()
        )
        return sorted(
            key for key in found if KEY_PATTERN.fullmatch(key) or EXPORT_PATTERN.fullmatch(key)
        )

    def partial_writes(self) -> list[Path]:
        """Files being written, or left half-written by a process that was killed."""
        if not self.root.is_dir():
            return []
        return sorted(
            path
            for pattern in (f"??/{PARTIAL_PREFIX}*", f"exports/{PARTIAL_PREFIX}*")
            for path in self.root.glob(pattern)
            if path.is_file()
        )

    async def exists(self, key: str) -> bool:
        path = self.path_of(key)
        return path is not None and await asyncio.to_thread(path.is_file)

    async def read(self, key: str, *, url: str | None = None) -> bytes:
        """The file's bytes; `url` is not needed, the key says where the file is."""
        known = KEY_PATTERN.fullmatch(key) or EXPORT_PATTERN.fullmatch(key)
        path = self.path_of(key) if known else None
        if path is None:
            raise FileNotFoundError(key)
        return await asyncio.to_thread(path.read_bytes)


def _write_atomically(target: Path, write: object) -> None:
    """Write through a temporary file in the same folder, flushed to disk, then renamed over
    `target`: readers see the whole file or none of it."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)  # type: ignore[operator]
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
