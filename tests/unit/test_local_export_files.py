"""Exported files in local storage: kept under `exports/<sha256>.<ext>`, listed with the images'
keys (so `storyframe gc` can find an orphan), served by the media route with their own content
type, and deleted by key; nothing else under `exports/` is a key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from storyframe.storage.local import LocalStorage
from storyframe.storage.media import media_endpoint


def _file(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    path = tmp_path / "made.bin"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


async def test_an_export_is_stored_listed_served_and_deleted(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media", "http://storyframe.test")
    path, checksum = _file(tmp_path, b"%PDF-1.7 a storyboard")
    blob = await storage.put_file(path, checksum=checksum, extension="pdf")
    assert blob.key == f"exports/{checksum}.pdf"
    assert blob.url == f"http://storyframe.test/media/exports/{checksum}.pdf"
    assert await storage.keys() == [blob.key]
    assert await storage.read(blob.key) == b"%PDF-1.7 a storyboard"

    app = Starlette(routes=[Route("/media/{key:path}", media_endpoint(storage))])
    with TestClient(app) as client:
        answer = client.get(f"/media/{blob.key}")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.content == b"%PDF-1.7 a storyboard"
        partial = client.get(f"/media/{blob.key}", headers={"Range": "bytes=0-3"})
        assert (partial.status_code, partial.content) == (206, b"%PDF")

    await storage.delete(blob.key)
    assert await storage.keys() == []
    assert not await storage.exists(blob.key)


@pytest.mark.parametrize(
    "key",
    ["exports/made.pdf", "exports/../secret.pdf", f"exports/{'a' * 64}.exe", "exports/"],
)
async def test_only_exported_files_are_keys(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "media", "http://storyframe.test")
    assert storage.path_of(key) is None
    with pytest.raises(ValueError, match="not a file storage keeps"):
        await storage.put_file(_file(tmp_path, b"x")[0], checksum="zz", extension="exe")
