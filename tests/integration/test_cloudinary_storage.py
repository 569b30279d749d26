"""CloudinaryStorage through the real Cloudinary SDK, against a fake Cloudinary over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from pathlib import Path
from urllib.parse import urlsplit

import cloudinary
import httpx
import pytest
from PIL import Image

from storyframe.domain.ports import Blob, BlobStorage
from storyframe.storage.cloudinary import CloudinaryStorage, StorageError
from tests.support.fake_cloudinary import FakeCloudinary, fake_cloudinary_fixture  # noqa: F401


def _image(
    directory: Path, name: str, color: tuple[int, int, int], size: tuple[int, int] = (40, 30)
) -> tuple[Path, str]:
    path = directory / name
    Image.new("RGB", size, color).save(path, format="PNG")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


async def _put(storage: BlobStorage, path: Path, checksum: str) -> Blob:
    return await storage.put(path, checksum=checksum, content_type="image/png", thumbnail=b"")


async def _stored(
    storage: BlobStorage,
    directory: Path,
    name: str,
    color: tuple[int, int, int],
    size: tuple[int, int] = (40, 30),
) -> tuple[Path, Blob]:
    """An image file, and what `storage` made of it."""
    path, checksum = _image(directory, name, color, size)
    return path, await _put(storage, path, checksum)


@pytest.fixture
def storage(fake_cloudinary: FakeCloudinary) -> CloudinaryStorage:
    return CloudinaryStorage(fake_cloudinary.url)


async def _fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def test_put_returns_a_blob_whose_url_serves_the_file(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    path, checksum = _image(tmp_path, "red.png", (255, 0, 0))

    blob = await _put(storage, path, checksum)

    assert blob.key == f"storyframe/{checksum}"
    assert blob.checksum == checksum
    assert blob.byte_size == path.stat().st_size
    assert blob.url.startswith(f"{fake_cloudinary.base_url}/fake-cloud/image/upload/v")
    assert blob.url.endswith(f"/{blob.key}.png")
    response = await _fetch(blob.url)
    assert response.status_code == 200
    assert response.content == path.read_bytes()
    asset = fake_cloudinary.assets[blob.key]
    assert (asset.format, asset.width, asset.height) == ("png", 40, 30)
    (upload,) = fake_cloudinary.requests_to("/image/upload")
    assert upload.method == "POST"
    assert upload.path == f"/v1_1/{fake_cloudinary.cloud_name}/image/upload"
    assert upload.fields["public_id"] == blob.key
    assert upload.fields["overwrite"] == "0"
    assert upload.fields["unique_filename"] == "0"
    assert upload.fields["file"] == "red.png"  # not the server's local path
    assert await storage.exists(blob.key)


async def test_putting_the_same_bytes_again_is_idempotent(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    path, checksum = _image(tmp_path, "a.png", (0, 128, 0))
    copy = tmp_path / "copy-of-a.png"
    copy.write_bytes(path.read_bytes())

    first = await _put(storage, path, checksum)
    second = await _put(storage, copy, checksum)

    assert second == first
    assert list(fake_cloudinary.assets) == [first.key]
    assert len(fake_cloudinary.requests_to("/image/upload")) == 2


async def test_the_thumbnail_url_transforms_the_same_asset(
    fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    path, checksum = _image(tmp_path, "big.png", (0, 0, 255), size=(1200, 800))
    blob = await _put(CloudinaryStorage(fake_cloudinary.url), path, checksum)
    version = fake_cloudinary.assets[blob.key].version

    thumbnail = urlsplit(blob.thumbnail_url)

    assert thumbnail.scheme == "https"
    assert thumbnail.netloc == "res.cloudinary.com"
    assert thumbnail.path == (
        f"/{fake_cloudinary.cloud_name}/image/upload/c_limit,f_webp,h_512,q_auto,w_512"
        f"/v{version}/{blob.key}"
    )
    assert blob.thumbnail_url != blob.url


async def test_a_private_cdn_in_the_url_serves_thumbnails(fake_cloudinary: FakeCloudinary) -> None:
    url = fake_cloudinary.url.replace("?", "/media.example.com?", 1)
    storage = CloudinaryStorage(url)

    assert storage.thumbnail_url("storyframe/abc", version=7) == (
        "https://media.example.com/image/upload/c_limit,f_webp,h_512,q_auto,w_512/v7/storyframe/abc"
    )


async def test_delete_removes_the_asset_and_ignores_unknown_keys(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    _, blob = await _stored(storage, tmp_path, "gone.png", (9, 9, 9))

    await storage.delete(blob.key)
    await storage.delete(blob.key)
    await storage.delete("storyframe/never-was")

    assert fake_cloudinary.assets == {}
    assert (await _fetch(blob.url)).status_code == 404
    assert not await storage.exists(blob.key)
    destroys = fake_cloudinary.requests_to("/image/destroy")
    assert [request.fields["public_id"] for request in destroys] == [
        blob.key,
        blob.key,
        "storyframe/never-was",
    ]
    assert all(request.fields["invalidate"] == "1" for request in destroys)


async def test_keys_pages_through_the_folder(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    fake_cloudinary.page_size = 2
    other_folder = CloudinaryStorage(fake_cloudinary.url, folder="elsewhere")
    images = [_image(tmp_path, f"{shade}.png", (shade, shade, 0)) for shade in range(5)]

    blobs = await asyncio.gather(*(_put(storage, path, checksum) for path, checksum in images))
    stranger = await _put(other_folder, *_image(tmp_path, "x.png", (1, 2, 3)))

    assert sorted(await storage.keys()) == sorted(blob.key for blob in blobs)
    assert await other_folder.keys() == [stranger.key]
    listings = fake_cloudinary.requests_to("/resources/image/upload")
    assert len(listings) == 3 + 1
    assert [request.query.get("next_cursor") is None for request in listings[:3]] == [
        True,
        False,
        False,
    ]
    assert all(request.query["max_results"] == "500" for request in listings)
    assert all(request.query["prefix"] == "storyframe/" for request in listings[:3])


async def test_keys_of_an_empty_folder(fake_cloudinary: FakeCloudinary) -> None:
    assert await CloudinaryStorage(fake_cloudinary.url).keys() == []


async def test_exists(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    blob = await _put(storage, *_image(tmp_path, "here.png", (5, 6, 7)))

    assert await storage.exists(blob.key)
    assert not await storage.exists("storyframe/missing")
    lookups = fake_cloudinary.requests_to("/resources/image/upload/storyframe/missing")
    assert [request.method for request in lookups] == ["GET"]


def _lookups(fake: FakeCloudinary) -> list[str]:
    """The Admin API lookups of single assets the fake has seen."""
    prefix = f"/v1_1/{fake.cloud_name}/resources/image/upload/"
    with fake.lock:
        return [request.path for request in fake.requests if request.path.startswith(prefix)]


async def test_read_with_the_stored_url_costs_one_delivery_and_no_admin_call(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    path, blob = await _stored(storage, tmp_path, "read.png", (9, 8, 7))
    fake_cloudinary.requests.clear()

    data = await storage.read(blob.key, url=blob.url)

    assert data == path.read_bytes()
    assert [request.path for request in fake_cloudinary.requests] == [urlsplit(blob.url).path]
    assert _lookups(fake_cloudinary) == []


async def test_read_without_a_url_looks_the_asset_up(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    path, blob = await _stored(storage, tmp_path, "lookup.png", (7, 8, 9))
    fake_cloudinary.requests.clear()

    data = await storage.read(blob.key)

    assert data == path.read_bytes()
    assert _lookups(fake_cloudinary) == [f"/v1_1/fake-cloud/resources/image/upload/{blob.key}"]
    assert fake_cloudinary.requests[-1].path == urlsplit(blob.url).path


@pytest.mark.parametrize(
    "url",
    [
        "{base}/fake-cloud/image/upload/v1/storyframe/another-key.png",
        "/media/{key}.png",  # a URL of local storage, from before a switch
        "{base}/fake-cloud/video/upload/v1/{key}.png",
        "{base}/fake-cloud/image/upload/c_limit,w_512/v1/{key}",  # a derived image
        "{base}/fake-cloud/image/upload/v1/{key}.png?token=1",
        "file:///fake-cloud/image/upload/v1/{key}.png",
    ],
)
async def test_read_never_fetches_a_url_that_is_not_the_keys(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path, url: str
) -> None:
    path, blob = await _stored(storage, tmp_path, "foreign.png", (1, 2, 3))
    fake_cloudinary.requests.clear()

    data = await storage.read(blob.key, url=url.format(base=fake_cloudinary.base_url, key=blob.key))

    assert data == path.read_bytes()
    assert _lookups(fake_cloudinary) == [f"/v1_1/fake-cloud/resources/image/upload/{blob.key}"]
    assert [request.path for request in fake_cloudinary.requests][-1] == urlsplit(blob.url).path
    assert len(fake_cloudinary.requests) == 2


async def test_read_falls_back_to_a_lookup_when_the_url_serves_nothing(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    # given an asset destroyed and uploaded again: same key, a new version and URL
    path, checksum = _image(tmp_path, "again.png", (3, 3, 3))
    old = await _put(storage, path, checksum)
    await storage.delete(old.key)
    new = await _put(storage, path, checksum)
    assert new.url != old.url
    fake_cloudinary.requests.clear()

    # when
    data = await storage.read(old.key, url=old.url)

    # then
    assert data == path.read_bytes()
    assert [request.path for request in fake_cloudinary.requests] == [
        urlsplit(old.url).path,
        f"/v1_1/fake-cloud/resources/image/upload/{old.key}",
        urlsplit(new.url).path,
    ]


async def test_read_of_a_destroyed_asset_raises_file_not_found(
    storage: CloudinaryStorage, tmp_path: Path
) -> None:
    _, blob = await _stored(storage, tmp_path, "gone.png", (4, 4, 4))
    await storage.delete(blob.key)

    with pytest.raises(FileNotFoundError):
        await storage.read(blob.key, url=blob.url)
    with pytest.raises(FileNotFoundError):
        await storage.read(blob.key)


async def test_read_reports_a_failing_delivery_as_storage_error(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    _, blob = await _stored(storage, tmp_path, "broken.png", (6, 6, 6))
    fake_cloudinary.deliver_with = 503

    with pytest.raises(StorageError, match="503"):
        await storage.read(blob.key, url=blob.url)


async def test_a_bad_api_secret_raises_storage_error(
    fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    path, checksum = _image(tmp_path, "secret.png", (1, 1, 1))
    good = CloudinaryStorage(fake_cloudinary.url)
    blob = await _put(good, path, checksum)
    bad = CloudinaryStorage(fake_cloudinary.url_with(api_secret="not-the-secret"))

    with pytest.raises(StorageError, match="Invalid Signature") as raised:
        await _put(bad, path, checksum)
    assert isinstance(raised.value.__cause__, cloudinary.exceptions.AuthorizationRequired)
    with pytest.raises(StorageError):
        await bad.delete(blob.key)
    with pytest.raises(StorageError, match="401"):
        await bad.keys()
    with pytest.raises(StorageError, match="401"):
        await bad.exists(blob.key)  # not False: a refusal is not an absence
    assert list(fake_cloudinary.assets) == [blob.key]


@pytest.mark.parametrize("status", [400, 500, 502])
async def test_server_failures_raise_storage_error(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path, status: int
) -> None:
    path, checksum = _image(tmp_path, "fail.png", (2, 2, 2))
    fake_cloudinary.fail_with = status

    with pytest.raises(StorageError):
        await _put(storage, path, checksum)
    with pytest.raises(StorageError):
        await storage.delete(f"storyframe/{checksum}")
    with pytest.raises(StorageError):
        await storage.keys()  # the SDK raises a bare Exception for 502
    with pytest.raises(StorageError):
        await storage.exists(f"storyframe/{checksum}")


async def test_an_unreachable_server_raises_storage_error(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    storage = CloudinaryStorage(f"cloudinary://k:s@cloud?upload_prefix=http://127.0.0.1:{port}")
    path, checksum = _image(tmp_path, "nowhere.png", (3, 3, 3))

    with pytest.raises(StorageError):
        await _put(storage, path, checksum)
    with pytest.raises(StorageError):
        await storage.keys()


async def test_two_clouds_in_one_process_do_not_interfere(
    fake_cloudinary: FakeCloudinary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A global configuration pointing elsewhere must not matter either.
    polluted = cloudinary.Config()
    polluted.update(
        cloud_name="global-cloud",
        api_key="global-key",
        api_secret="global-secret",
        upload_prefix="http://127.0.0.1:9",
        upload_preset="global-preset",
        oauth_token="global-token",
        dpr="2.0",
    )
    monkeypatch.setattr(cloudinary, "_config", polluted)
    before = dict(vars(polluted))
    with FakeCloudinary("second-cloud", "222222222222222", "second-secret") as second:
        first_storage = CloudinaryStorage(fake_cloudinary.url)
        second_storage = CloudinaryStorage(second.url)
        first_path, first_checksum = _image(tmp_path, "one.png", (10, 20, 30))
        second_path, second_checksum = _image(tmp_path, "two.png", (30, 20, 10))

        first_blob, second_blob = await asyncio.gather(
            _put(first_storage, first_path, first_checksum),
            _put(second_storage, second_path, second_checksum),
        )

        assert list(fake_cloudinary.assets) == [first_blob.key]
        assert list(second.assets) == [second_blob.key]
        assert "/fake-cloud/" in first_blob.thumbnail_url
        assert "/second-cloud/" in second_blob.thumbnail_url
        assert "dpr" not in first_blob.thumbnail_url
        assert await first_storage.keys() == [first_blob.key]
        assert await second_storage.keys() == [second_blob.key]
        assert not await first_storage.exists(second_blob.key)
        await second_storage.delete(first_blob.key)
        assert list(fake_cloudinary.assets) == [first_blob.key]
        assert all("upload_preset" not in r.fields for r in fake_cloudinary.requests)
    assert dict(vars(polluted)) == before
    assert cloudinary.config() is polluted


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://key:secret@cloud",
        "cloudinary://cloud",
        "cloudinary://key@cloud",
        "cloudinary://:secret@cloud",
        "cloudinary://key:secret@",
        "cloudinary://key:secret@cloud:99",
        "cloudinary://key:secret@cloud:port",
        "cloudinary://key:secret@cloud?upload_prefix=ftp://host",
        "cloudinary://key:secret@cloud?signature_algorithm=md5",
        "cloudinary://key:secret@cloud?timeout=soon",
        "cloudinary://key:secret@cloud?api_proxy=http://proxy",
    ],
)
def test_a_malformed_url_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        CloudinaryStorage(url)


@pytest.mark.parametrize("folder", ["", "/", "a b", "../up", "a//b"])
def test_a_bad_folder_raises_value_error(folder: str) -> None:
    with pytest.raises(ValueError, match="folder"):
        CloudinaryStorage("cloudinary://key:secret@cloud", folder=folder)


def test_the_secret_stays_out_of_repr() -> None:
    storage = CloudinaryStorage("cloudinary://key:hush@cloud?signature_algorithm=sha256")
    assert "hush" not in repr(storage)
    assert storage.cloud_name == "cloud"


async def test_an_export_is_stored_as_a_raw_asset_served_as_is_and_destroyed_as_one(
    storage: CloudinaryStorage, fake_cloudinary: FakeCloudinary, tmp_path: Path
) -> None:
    # given: a file that is no image (an exported video's bytes)
    path = tmp_path / "export.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()

    # when it is stored
    blob = await storage.put_file(path, checksum=checksum, extension="mp4")

    # then: a raw asset whose public id keeps the extension, served byte for byte
    assert blob.key == f"storyframe/exports/{checksum}.mp4"
    assert fake_cloudinary.requests_to("/raw/upload")
    assert (await _fetch(blob.url)).content == path.read_bytes()
    assert blob.byte_size == path.stat().st_size
    # and listed among the keys, as stored, so that `storyframe gc` finds it when orphaned
    assert blob.key in await storage.keys()
    assert await storage.exists(blob.key)
    # and deleting it destroys the raw asset
    await storage.delete(blob.key)
    assert fake_cloudinary.requests_to("/raw/destroy")
    assert blob.key not in fake_cloudinary.assets
    assert blob.key not in await storage.keys()
    assert not await storage.exists(blob.key)
