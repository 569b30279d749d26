"""Releasing blobs nothing references any more, and finding what has drifted apart."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from storyframe.domain.ports import BlobIndex, BlobStorage, FileReleaser

log = logging.getLogger("storyframe.files")


@dataclass(frozen=True, slots=True)
class Drift:
    """Blobs no image references, and images whose blob is gone."""

    orphan_keys: list[str]
    images_missing_files: list[int]


class FileJanitor(FileReleaser):
    def __init__(self, index: BlobIndex, storage: BlobStorage) -> None:
        self._index = index
        self._storage = storage

    async def release(self, keys: Collection[str]) -> None:
        if not keys:
            return
        # Identical bytes are one blob: another image (of anyone) may still show it.
        for key in set(keys) - await self._index.keys_in_use(keys):
            try:
                await self._storage.delete(key)
            except Exception:  # the row is gone already; `storyframe gc` finds the leftover
                log.exception("could not delete blob", extra={"key": key})

    async def drift(self) -> Drift:
        stored = set(await self._storage.keys())
        referenced = await self._index.all_keys()
        missing = [key for key in referenced - stored if not await self._storage.exists(key)]
        return Drift(
            orphan_keys=sorted(stored - referenced),
            images_missing_files=sorted(await self._index.images_with_key(missing)),
        )

    async def collect(self) -> Drift:
        """Delete the orphan blobs; report them and the images whose blob is missing."""
        drift = await self.drift()
        for key in drift.orphan_keys:
            if not await self._index.keys_in_use([key]):  # referenced since we looked
                await self._storage.delete(key)
        return drift
