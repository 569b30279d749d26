"""What the upload, media and file-lifecycle tests share: images made with Pillow, multipart
requests per the GraphQL multipart request spec, and the app on either storage backend."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import struct
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from storyframe.app import create_app
from storyframe.domain.ports import BlobStorage
from storyframe.runtime import Runtime
from storyframe.schema.ids import encode_id
from storyframe.services.container import Services
from storyframe.services.image_places import StoredImage
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage
from tests.conftest import OWNER_EMAIL, OWNER_PASSWORD, GraphQLClient
from tests.fake_cloudinary import FakeCloudinary
from tests.integration.helpers import pk_of, place_of, post_message
from tests.integration.scenes import BASE_URL

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


def image_bytes(
    fmt: str = "PNG", color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def image_file(
    name: str,
    fmt: str = "PNG",
    color: tuple[int, int, int] = (200, 30, 30),
    size: tuple[int, int] = (64, 48),
) -> File:
    return File(name, image_bytes(fmt, color, size), CONTENT_TYPES[fmt])


def pixel_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A small, valid-looking PNG whose header declares a huge image."""

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


@pytest.fixture(name="stack", params=BACKENDS)
async def stack_fixture(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Stack]:
    fake: FakeCloudinary | None = None
    if request.param == "cloudinary":
        fake = request.getfixturevalue("fake_cloudinary")
        assert fake is not None
        changes: dict[str, Any] = {"storage_backend": "cloudinary", "cloudinary_url": fake.url}
    else:
        changes = {"public_url": "https://media.storyframe.test/"}
    app: Starlette = create_app(settings.model_copy(update=changes))
    runtime: Runtime = app.state.runtime
    try:
        owner = await runtime.accounts.sign_up(OWNER_EMAIL, OWNER_PASSWORD, "tests")
        assert owner.user.id is not None
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {owner.token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, headers=headers
        ) as http:
            yield Stack(
                backend=str(request.param),
                runtime=runtime,
                http=http,
                gql=GraphQLClient(http),
                services=runtime.services_for(owner.user.id),
                fake=fake,
            )
    finally:
        await runtime.engine.dispose()


async def generated_image(
    services: Services, storage: BlobStorage, chat_id: str, path: Path
) -> tuple[str, str]:
    """An image a message in the chat made, with a real stored file: (image ID, storage key)."""
    message_id = await post_message(services, chat_id, "make it so")
    data = await asyncio.to_thread(path.read_bytes)
    checksum = sha256(data)
    blob = await storage.put(path, checksum=checksum, content_type="image/png", thumbnail=b"")
    with Image.open(path) as opened:
        width, height = opened.size
    image = await services.images.add(
        place_of(chat_id),
        StoredImage(
            url=blob.url,
            storage_key=blob.key,
            width=width,
            height=height,
            content_type="image/png",
            byte_size=len(data),
            thumbnail_url=blob.thumbnail_url,
            checksum=checksum,
        ),
        message_id=pk_of(message_id),
    )
    assert image.id is not None
    return encode_id("Image", image.id), blob.key


def local(storage: BlobStorage) -> LocalStorage:
    assert isinstance(storage, LocalStorage)
    return storage
