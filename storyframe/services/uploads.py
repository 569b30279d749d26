"""Uploads: the user's own images into a frame, a context, a main chat or a gallery."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from storyframe.db.tables import Image
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.places import Place
from storyframe.services.image_files import (
    ImageRefused,
    Inspected,
    inspect_image_async,
)
from storyframe.services.image_places import ImageService, StoredImage
from storyframe.services.media import Media
from storyframe.services.temporaries import UPLOAD_PREFIX


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """An uploaded file, already on disk."""

    filename: str
    path: Path


class UploadService:
    def __init__(self, images: ImageService, media: Media) -> None:
        self._images = images
        self._media = media

    def workspace(self) -> tempfile.TemporaryDirectory[str]:
        """A folder for the files of one upload while they are checked, removed with them."""
        return self._media.temporaries.folder(UPLOAD_PREFIX)

    async def upload(self, target: Place, incoming: Sequence[IncomingFile]) -> list[Image]:
        """Check every file, then store them all and record them in the target. One refused
        file refuses the request, and nothing is stored."""
        if not incoming:
            raise DomainError(ErrorCode.INVALID, "no files to upload", ["files"])
        if len(incoming) > self._media.max_files:
            raise DomainError(
                ErrorCode.INVALID, f"at most {self._media.max_files} files per request", ["files"]
            )
        await self._images.check_place(target)
        inspected = [await self._inspect(index, file) for index, file in enumerate(incoming)]
        stored: list[StoredImage] = []
        try:
            for file, facts in zip(incoming, inspected, strict=True):
                blob = await self._media.storage.put(
                    file.path,
                    checksum=facts.checksum,
                    content_type=facts.content_type,
                    thumbnail=facts.thumbnail,
                )
                stored.append(StoredImage.of(blob, facts))
            return await self._images.add_many(target, stored)
        except BaseException:
            # Blobs stored for rows that never committed; others may share them, so release.
            await self._media.files.release({item.storage_key for item in stored})
            raise

    async def _inspect(self, index: int, file: IncomingFile) -> Inspected:
        try:
            return await inspect_image_async(file.path, self._media.limits, self._media.decodes)
        except ImageRefused as refusal:
            name = file.filename or f"file {index + 1}"
            message = f"{name}: {refusal.reason}"
            raise DomainError(refusal.code, message, ["files", str(index)]) from None
