"""Temporary files: written under the data directory, never the system's, and what a killed
server left there (or half-written in the media folder) removed by `storyframe gc`."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from storyframe.cli import main
from storyframe.domain.ports import Blob
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage, key_for
from tests.support.clients import GraphQLClient
from tests.support.generating import generate_ok
from tests.support.images import image_bytes, sha256
from tests.support.scenes import seed_frame, seed_video
from tests.support.uploading import File, upload_ok

HOURS = 3600.0


def _listing(folder: Path) -> list[str]:
    """Everything under the folder, relative to it."""
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture
def system_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary folder, as `tempfile` sees it, moved to an empty folder."""
    folder = tmp_path / "system-temp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The source of every file local storage is given to store, as it is given."""
    sources: list[Path] = []
    put = LocalStorage.put

    async def noting_put(
        self: LocalStorage, source: Path, *, checksum: str, content_type: str, thumbnail: bytes
    ) -> Blob:
        assert await asyncio.to_thread(source.is_file)  # it exists while it is stored
        sources.append(source)
        return await put(
            self, source, checksum=checksum, content_type=content_type, thumbnail=thumbnail
        )

    monkeypatch.setattr(LocalStorage, "put", noting_put)
    return sources


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # files, not the database
async def test_a_generation_writes_its_temporary_files_in_the_data_directory(
    gql: GraphQLClient, settings: Settings, system_temp: Path, puts: list[Path]
) -> None:
    # given
    _, frame = await seed_frame(gql, "Opening shot")

    # when
    payload = await generate_ok(gql, "Frame", frame, "a lighthouse at dusk", imageCount=2)

    # then
    assert payload["generation"]["status"] == "SUCCEEDED"
    assert len(puts) == 2
    for source in puts:
        assert source.parent == settings.temp_dir
        assert source.name.startswith("storyframe-generated-")
    assert _listing(system_temp) == []
    assert _listing(settings.temp_dir) == []  # each deleted once stored


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # files, not the database
async def test_an_upload_waits_in_the_data_directory_while_it_is_checked(
    gql: GraphQLClient,
    http: httpx.AsyncClient,
    settings: Settings,
    system_temp: Path,
    puts: list[Path],
) -> None:
    # given
    video = await seed_video(gql)

    # when
    await upload_ok(http, video.project_id, [File("a.png", image_bytes(color=(9, 9, 9)))])

    # then
    (source,) = puts
    assert source.parent.parent == settings.temp_dir
    assert source.parent.name.startswith("storyframe-upload-")
    assert _listing(system_temp) == []
    assert _listing(settings.temp_dir) == []


# --- storyframe gc ----------------------------------------------------------------------------


def _touch(path: Path, data: bytes, age: float) -> Path:
    """A file last written `age` seconds ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def _age(path: Path, age: float) -> None:
    when = time.time() - age
    os.utime(path, (when, when))


def _gc(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["gc", *argv])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, report


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # files, not the database
async def test_gc_removes_the_temporary_files_a_killed_server_left_and_keeps_fresh_ones(
    gql: GraphQLClient,
    http: httpx.AsyncClient,
    settings: Settings,
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given: a stored image, and what a server killed in the middle of its work leaves
    video = await seed_video(gql)
    data = image_bytes(color=(33, 66, 99))
    (image,) = await upload_ok(http, video.project_id, [File("kept.png", data)])
    key = key_for(sha256(data), "image/png")
    shelf = (settings.media_dir / key).parent
    tmp = settings.temp_dir
    stale = [
        _touch(shelf / ".tmp-half-written", data[:100], 2 * HOURS),
        _touch(tmp / "storyframe-generated-abandoned", data, 2 * HOURS),
        _touch(tmp / "storyframe-upload-abandoned" / "upload-0", data, 2 * HOURS),
    ]
    _age(tmp / "storyframe-upload-abandoned", 2 * HOURS)
    # and what a running server is writing now
    fresh = [
        _touch(shelf / ".tmp-being-written", data[:10], 0),
        _touch(tmp / "storyframe-generated-being-checked", data, 0),
        _touch(tmp / "storyframe-upload-arriving" / "upload-0", data, 0),
        _touch(tmp / "storyframe-upload-arriving" / "upload-1", data, 2 * HOURS),
    ]
    _age(tmp / "storyframe-upload-arriving", 2 * HOURS)  # a part still arriving makes it fresh
    quarter_hour_old = _touch(tmp / "storyframe-generated-slow", data, HOURS / 4)
    expected = sorted(
        [
            f"media/{shelf.name}/.tmp-half-written",
            "tmp/storyframe-generated-abandoned",
            "tmp/storyframe-upload-abandoned",
        ]
    )
    capsys.readouterr()

    # when
    dry_code, dry = await asyncio.to_thread(_gc, ["--dry-run"], capsys)

    # then
    assert dry_code == 0
    assert dry["staleTemporaries"] == expected
    assert dry["removedTemporaries"] == 0
    assert all(path.exists() for path in [*stale, *fresh, quarter_hour_old])

    # when
    code, report = await asyncio.to_thread(_gc, [], capsys)

    # then
    assert code == 0
    assert report["staleTemporaries"] == expected
    assert report["removedTemporaries"] == 3
    assert report["orphanFiles"] == []
    assert not any(path.exists() for path in stale)
    assert not (tmp / "storyframe-upload-abandoned").exists()
    assert all(path.exists() for path in [*fresh, quarter_hour_old])
    served = await http.get(httpx.URL(image["url"]).path)
    assert served.content == data

    # when: a shorter age is asked for
    short_code, short = await asyncio.to_thread(_gc, ["--temp-age", "300"], capsys)

    # then
    assert short_code == 0
    assert short["staleTemporaries"] == ["tmp/storyframe-generated-slow"]
    assert short["removedTemporaries"] == 1
    assert not quarter_hour_old.exists()
    assert all(path.exists() for path in fresh)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # refused before any work
@pytest.mark.parametrize("age", ["-1", "nan", "soon"])
def test_gc_refuses_an_age_that_is_not_a_number_of_seconds(
    age: str, settings: Settings, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # when
    with pytest.raises(SystemExit) as exit_:
        main(["gc", "--temp-age", age])

    # then
    assert exit_.value.code == 2
    assert "--temp-age" in capsys.readouterr().err
