"""Blob storage on Cloudinary, through its official (synchronous) SDK.

The SDK keeps one global configuration (`cloudinary.config()`), filled at import time from the
`CLOUDINARY_URL` environment variable. This backend never reads or writes it: every SDK call
gets the account's settings as per-call options, and every option that would otherwise fall
back to the global configuration is passed explicitly, so several instances (even for
different clouds) can live in one process. SDK calls block, so they run in worker threads.

Calls made:

- Upload API (signed form posts): `cloudinary.uploader.upload` (`POST /v1_1/<cloud>/image/upload`)
  and `cloudinary.uploader.destroy` (`POST /v1_1/<cloud>/image/destroy`);
- Admin API (HTTP basic auth, rate-limited per account): `cloudinary.api.resources`
  (`GET /v1_1/<cloud>/resources/image/upload?prefix=…`) and `cloudinary.api.resource`
  (`GET /v1_1/<cloud>/resources/image/upload/<public_id>`);
- no call for thumbnails: their URL is a delivery URL with a transformation, built locally
  by `cloudinary.utils.cloudinary_url`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import urllib3
from urllib3.exceptions import HTTPError

from storyframe.domain.ports import Blob, BlobStorage
from storyframe.storage.cloudinary_account import Account

__all__ = ["THUMBNAIL_TRANSFORMATION", "CloudinaryStorage", "StorageError"]

T = TypeVar("T")

THUMBNAIL_TRANSFORMATION: Final[Mapping[str, str | int]] = {
    "crop": "limit",
    "width": 512,
    "height": 512,
    "fetch_format": "webp",
    "quality": "auto",
}
"""Delivery transformation of thumbnails: `c_limit,f_webp,h_512,q_auto,w_512`."""

_PAGE_SIZE: Final = 500  # the Admin API's largest page
_CHECKSUM: Final = re.compile(r"[A-Za-z0-9_-]+")
_FOLDER: Final = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")


EXPORTS_FOLDER = "exports"
"""Where exports go within the folder, as raw assets (their public ids keep the extension)."""


class StorageError(Exception):
    """Cloudinary could not be reached or refused a call (HTTP error, bad credentials, network
    failure, unreadable answer). The SDK's own exception is the `__cause__`."""


def _download(url: str, key: str) -> bytes | None:
    """The bytes at a delivery URL; None when Cloudinary has nothing there."""
    response = urllib3.request("GET", url, timeout=30.0, retries=False)
    if response.status == 404:
        return None
    if response.status != 200:
        raise StorageError(f"Cloudinary delivered {response.status} for {key!r}")
    return bytes(response.data)


def _is_cloudinary_failure(error: Exception) -> bool:
    # The Admin API raises a bare `Exception` for statuses it has no class for (502, 504, …),
    # and `Exception("Must supply …")` for missing settings.
    return isinstance(error, cloudinary.exceptions.Error | HTTPError | OSError) or (
        type(error) is Exception
    )


class CloudinaryStorage(BlobStorage):
    """Blobs as Cloudinary image assets with public id `<folder>/<checksum>`.

    The key is the public id. Uploads never overwrite (`overwrite=False`), so storing bytes
    already there returns the existing asset. Thumbnails are not uploaded: `thumbnail_url` asks
    Cloudinary to derive one (`THUMBNAIL_TRANSFORMATION`) on first delivery.
    """

    def __init__(self, url: str, folder: str = "storyframe") -> None:
        """`url` is a CLOUDINARY_URL; a ValueError tells what is wrong with it or `folder`."""
        self._account = Account.parse(url)
        folder = folder.strip("/")
        if not _FOLDER.fullmatch(folder):
            raise ValueError("folder must be letters, digits, '-' and '_', separated by '/'")
        self._folder = folder

    def __repr__(self) -> str:
        return (
            f"CloudinaryStorage(cloud_name={self._account.cloud_name!r}, folder={self._folder!r})"
        )

    @property
    def cloud_name(self) -> str:
        return self._account.cloud_name

    @property
    def folder(self) -> str:
        return self._folder

    async def put(
        self, source: Path, *, checksum: str, content_type: str, thumbnail: bytes
    ) -> Blob:
        """Upload `source` as `<folder>/<checksum>`. `content_type` and `thumbnail` are unused:
        Cloudinary detects the format itself and derives thumbnails by transformation."""
        if not _CHECKSUM.fullmatch(checksum):
            raise ValueError("checksum must be letters, digits, '-' and '_'")
        key, url, byte_size, version = await self._upload(source, checksum, "image")
        return Blob(
            key=key,
            url=url,
            thumbnail_url=self.thumbnail_url(key, version=version),
            byte_size=byte_size,
            checksum=checksum,
        )

    async def put_file(self, source: Path, *, checksum: str, extension: str) -> Blob:
        """Upload an export as a raw asset `<folder>/exports/<checksum>.<extension>`, delivered
        as stored (Cloudinary transforms no raw file)."""
        if not _CHECKSUM.fullmatch(checksum) or not extension.isalnum():
            raise ValueError("checksum and extension must be letters and digits")
        name = f"{EXPORTS_FOLDER}/{checksum}.{extension}"
        key, url, byte_size, _ = await self._upload(source, name, "raw")
        return Blob(key=key, url=url, thumbnail_url=url, byte_size=byte_size, checksum=checksum)

    async def _upload(
        self, source: Path, name: str, resource_type: str
    ) -> tuple[str, str, int, Any]:
        """Upload `source` as `<folder>/<name>` (never over an asset already there): its public
        id, delivery URL, size and version."""
        options = self._account.api_options()

        def upload() -> Any:
            return cloudinary.uploader.upload(
                str(source),
                # Names the multipart part; the default would be the whole local path.
                filename=source.name,
                public_id=f"{self._folder}/{name}",
                overwrite=False,
                unique_filename=False,
                resource_type=resource_type,
                type="upload",
                upload_preset=None,  # otherwise taken from the global configuration
                **options,
            )

        response = await self._call("upload", upload)
        try:
            return (
                str(response["public_id"]),
                str(response["secure_url"]),
                int(response["bytes"]),
                response.get("version"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StorageError(f"unexpected Cloudinary upload answer: {error!r}") from error

    def thumbnail_url(self, key: str, *, version: int | str | None = None) -> str:
        """The delivery URL of the thumbnail of the asset `key`; builds a URL, calls nothing."""
        url, _ = cloudinary.utils.cloudinary_url(
            key,
            resource_type="image",
            type="upload",
            version=version,
            **self._account.url_options(),
            **THUMBNAIL_TRANSFORMATION,
        )
        return str(url)

    async def delete(self, key: str) -> None:
        """Destroy the asset (and with it its derived thumbnails), invalidating CDN copies."""
        options = self._account.api_options()

        resource_type = self._resource_type(key)

        def destroy() -> Any:
            return cloudinary.uploader.destroy(
                key, invalidate=True, resource_type=resource_type, type="upload", **options
            )

        response = await self._call("destroy", destroy)
        result = response.get("result") if isinstance(response, Mapping) else None
        if result not in ("ok", "not found"):
            raise StorageError(f"Cloudinary could not destroy {key!r}: {result!r}")

    async def keys(self) -> list[str]:
        """Public ids under the folder, read page by page from the Admin API: the images, then
        the exports (raw assets)."""
        images = await self._list("image", f"{self._folder}/")
        return images + await self._list("raw", f"{self._folder}/{EXPORTS_FOLDER}/")

    async def _list(self, resource_type: str, prefix: str) -> list[str]:
        options = self._account.api_options()

        def list_all() -> list[str]:
            keys: list[str] = []
            seen: set[str] = set()
            cursor: str | None = None
            while True:
                page = cloudinary.api.resources(
                    resource_type=resource_type,
                    type="upload",
                    prefix=prefix,
                    max_results=_PAGE_SIZE,
                    next_cursor=cursor,
                    **options,
                )
                keys.extend(str(resource["public_id"]) for resource in page["resources"])
                cursor = page.get("next_cursor")
                if not cursor:
                    return keys
                if cursor in seen:
                    raise StorageError("Cloudinary repeated a listing cursor")
                seen.add(cursor)

        try:
            return await self._call("resources", list_all)
        except (KeyError, TypeError) as error:
            raise StorageError(f"unexpected Cloudinary listing answer: {error!r}") from error

    async def exists(self, key: str) -> bool:
        """Whether the asset is there (Admin API); failures other than "not found" raise."""
        options = self._account.api_options()

        resource_type = self._resource_type(key)

        def exists() -> bool:
            try:
                cloudinary.api.resource(key, resource_type=resource_type, type="upload", **options)
            except cloudinary.exceptions.NotFound:
                return False
            return True

        return await self._call("resource", exists)

    async def read(self, key: str, *, url: str | None = None) -> bytes:
        """The asset's bytes, from its delivery URL: `url` when it is the URL of `key` (a single
        CDN request), otherwise the one the Admin API reports for `key`. The Admin API
        is rate-limited per hour, so callers that know the URL should pass it; a URL that no
        longer serves the asset falls back to the lookup."""
        options = self._account.api_options()
        given = url if url is not None and self._delivers(url, key) else None

        def fetch() -> bytes | None:
            if given is not None:
                data = _download(given, key)
                if data is not None:
                    return data
            try:
                resource = cloudinary.api.resource(
                    key, resource_type="image", type="upload", **options
                )
            except cloudinary.exceptions.NotFound:
                return None
            return _download(str(resource["secure_url"]), key)

        data = await self._call("read", fetch)
        if data is None:
            raise FileNotFoundError(key)
        return data

    @staticmethod
    def _delivers(url: str, key: str) -> bool:
        """Whether `url` is the delivery URL of the original of `key`, as uploads answer it: an
        absolute URL whose path ends `/image/upload/v<version>/<key>.<format>`."""
        parts = urlsplit(url)
        tail = re.escape("/image/upload/") + r"v\d+/" + re.escape(key) + r"\.[a-z0-9]+"
        return (
            parts.scheme in ("https", "http")
            and bool(parts.netloc)
            and not parts.query
            and re.search(tail + r"\Z", parts.path) is not None
        )

    def _resource_type(self, key: str) -> str:
        """`raw` for an export, `image` for the rest."""
        return "raw" if key.startswith(f"{self._folder}/{EXPORTS_FOLDER}/") else "image"

    async def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except Exception as error:
            if _is_cloudinary_failure(error):
                raise StorageError(f"Cloudinary {what} failed: {error}") from error
            raise
