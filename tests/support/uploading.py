"""What the upload, media and file-lifecycle tests share: multipart requests per the GraphQL
multipart request spec, what the media directory holds, and the app on either storage backend."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from storyframe.domain.ports import BlobStorage
from storyframe.runtime import Runtime
from storyframe.schema.ids import encode_id
from storyframe.services.container import Services
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage
from tests.support.apps import owned_app
from tests.support.clients import GraphQLClient
from tests.support.fake_cloudinary import FakeCloudinary
from tests.support.ids import known, pk_of, place_of
from tests.support.images import image_bytes, sha256, stored_image
from tests.support.seeds import Seeds, post_message

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}

UPLOAD_IMAGES = """
mutation UploadImages($input: UploadImagesInput!) {
  uploadImages(input: $input) {
    images {
      id url thumbnailUrl width height contentType byteSize
      message { id }
      project { id }
      appearsIn { __typename ... on Node { id } }
    }
    userErrors { field message code }
  }
}
"""

IMAGES_IN = """
query ImagesIn($id: ID!) {
  node(id: $id) {
    __typename
    ... on Frame { images(first: 100) { nodes { id url } } }
    ... on Context { images(first: 100) { nodes { id url } } }
    ... on MainChat { images(first: 100) { nodes { id url } } }
    ... on Project { gallery(first: 100) { nodes { id url } } }
  }
}
"""

IMAGE = """
query OneImage($id: ID!) { image(id: $id) { id url thumbnailUrl } }
"""


@dataclass(frozen=True, slots=True)
class File:
    """One file part of a multipart request."""

    name: str
    data: bytes
    content_type: str = "image/png"


def image_file(
    name: str,
    fmt: str = "PNG",
    color: tuple[int, int, int] = (200, 30, 30),
    size: tuple[int, int] = (64, 48),
) -> File:
    return File(name, image_bytes(fmt, color, size), CONTENT_TYPES[fmt])


def multipart(target_id: str, files: Sequence[File]) -> tuple[dict[str, str], list[Any]]:
    """The `operations` and `map` fields and the file parts of an `uploadImages` request."""
    operations = {
        "query": UPLOAD_IMAGES,
        "variables": {"input": {"targetId": target_id, "files": [None] * len(files)}},
    }
    mapping = {str(i): [f"variables.input.files.{i}"] for i in range(len(files))}
    data = {"operations": json.dumps(operations), "map": json.dumps(mapping)}
    parts = [(str(i), (f.name, f.data, f.content_type)) for i, f in enumerate(files)]
    return data, parts


async def post_upload(
    http: httpx.AsyncClient, target_id: str, files: Sequence[File], *, csrf: bool = True
) -> httpx.Response:
    data, parts = multipart(target_id, files)
    headers = {"Apollo-Require-Preflight": "true"} if csrf else {}
    if not parts:  # httpx sends multipart only with a file part; build the body by hand
        boundary = "storyframe-test-boundary"
        body = (
            "".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                for name, value in data.items()
            )
            + f"--{boundary}--\r\n"
        )
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        return await http.post("/graphql", content=body.encode(), headers=headers)
    return await http.post("/graphql", data=data, files=parts, headers=headers)


async def upload(http: httpx.AsyncClient, target_id: str, files: Sequence[File]) -> dict[str, Any]:
    """The `uploadImages` payload (images and user errors) of a request that reached GraphQL."""
    response = await post_upload(http, target_id, files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    payload: dict[str, Any] = body["data"]["uploadImages"]
    return payload


async def upload_ok(
    http: httpx.AsyncClient, target_id: str, files: Sequence[File]
) -> list[dict[str, Any]]:
    payload = await upload(http, target_id, files)
    assert payload["userErrors"] == [], payload["userErrors"]
    images: list[dict[str, Any]] = payload["images"]
    return images


async def images_in(gql: GraphQLClient, place_id: str) -> list[dict[str, Any]]:
    node = (await gql.data(IMAGES_IN, {"id": place_id}))["node"]
    connection = node["gallery"] if node["__typename"] == "Project" else node["images"]
    nodes: list[dict[str, Any]] = connection["nodes"]
    return nodes


def media_files(root: Path) -> list[str]:
    """Every file under the media directory, relative, temporary files included."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def originals(root: Path) -> list[str]:
    return [name for name in media_files(root) if not name.endswith(".thumb.webp")]


@dataclass
class Stack:
    """The app on one storage backend, with a signed-in client."""

    backend: str
    runtime: Runtime
    http: httpx.AsyncClient
    gql: GraphQLClient
    services: Services
    seeds: Seeds
    fake: FakeCloudinary | None

    @property
    def storage(self) -> BlobStorage:
        return self.runtime.media.storage

    async def fetch(self, url: str) -> httpx.Response:
        """GET an image URL: through the app for local storage, from the fake otherwise."""
        if self.fake is None:
            return await self.http.get(urlsplit(url).path)
        async with httpx.AsyncClient() as client:
            return await client.get(url)

    def blobs(self) -> list[str]:
        """What the storage holds (not counting local thumbnails)."""
        if self.fake is None:
            return originals(self.runtime.settings.media_dir)
        with self.fake.lock:
            return sorted(self.fake.assets)

    def everything_stored(self) -> list[str]:
        """Every stored file or asset, thumbnails and temporary files too."""
        if self.fake is None:
            return media_files(self.runtime.settings.media_dir)
        return self.blobs()

    async def holds(self, key: str) -> bool:
        return await self.storage.exists(key)


BACKENDS = ["local", "cloudinary"]


@asynccontextmanager
async def stack_on(
    settings: Settings, fake: FakeCloudinary | None = None, **overrides: Any
) -> AsyncIterator[Stack]:
    """The app on local storage, or on the fake Cloudinary when one is given, with `overrides`."""
    if fake is not None:
        overrides |= {"storage_backend": "cloudinary", "cloudinary_url": fake.url}
    else:
        overrides |= {"public_url": "https://media.storyframe.test/"}
    async with owned_app(settings, **overrides) as owned:
        yield Stack(
            backend="local" if fake is None else "cloudinary",
            runtime=owned.runtime,
            http=owned.http,
            gql=owned.gql,
            services=owned.services,
            seeds=owned.seeds,
            fake=fake,
        )


@pytest.fixture(name="stack", params=BACKENDS)
async def stack_fixture(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Stack]:
    fake = request.getfixturevalue("fake_cloudinary") if request.param == "cloudinary" else None
    async with stack_on(settings, fake) as stack:
        yield stack


async def generated_image(
    seeds: Seeds, storage: BlobStorage, chat_id: str, path: Path
) -> tuple[str, str]:
    """An image a message in the chat made, with a real stored file: (image ID, storage key)."""
    message_id = await post_message(seeds, chat_id, "make it so")
    data = await asyncio.to_thread(path.read_bytes)
    checksum = sha256(data)
    blob = await storage.put(path, checksum=checksum, content_type="image/png", thumbnail=b"")
    with Image.open(path) as opened:
        width, height = opened.size
    stored = stored_image(
        blob.key,
        url=blob.url,
        width=width,
        height=height,
        byte_size=len(data),
        thumbnail_url=blob.thumbnail_url,
        checksum=checksum,
    )
    image = await seeds.add_image(place_of(chat_id), stored, pk_of(message_id))
    return encode_id("Image", known(image.id)), blob.key


def local(storage: BlobStorage) -> LocalStorage:
    assert isinstance(storage, LocalStorage)
    return storage
