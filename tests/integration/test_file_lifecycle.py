"""Stored files live as long as an image uses their bytes; `storyframe gc` finds the rest."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image as PILImage

from storyframe.cli import main
from storyframe.schema.ids import encode_id
from storyframe.settings import Settings
from storyframe.storage.local import key_for
from tests.support.clients import GraphQLClient
from tests.support.fake_cloudinary import fake_cloudinary_fixture  # noqa: F401
from tests.support.ids import pk_of
from tests.support.images import image_bytes, sha256
from tests.support.scenes import copy_image, create_frame, seed_video, select_image
from tests.support.uploading import (
    File,
    Stack,
    generated_image,
    images_in,
    media_files,
    stack_fixture,  # noqa: F401
    upload_ok,
)

DELETE = """
mutation Delete($id: ID!) {
  %s(input: {id: $id}) {
    deleted { videos frames messages images }
    userErrors { field message code }
  }
}
"""

IMAGE_KEY = """
query Image($id: ID!) { image(id: $id) { id url thumbnailUrl } }
"""


async def _delete(gql: GraphQLClient, mutation: str, target_id: str) -> dict[str, Any]:
    payload = await gql.mutate(DELETE % mutation, {"id": target_id})
    deleted: dict[str, Any] = payload["deleted"]
    return deleted


async def _one(stack: Stack, target: str, data: bytes, name: str = "a.png") -> dict[str, Any]:
    (image,) = await upload_ok(stack.http, target, [File(name, data)])
    return image


def _key(stack: Stack, data: bytes) -> str:
    if stack.backend == "local":
        return key_for(sha256(data), "image/png")
    return f"storyframe/{sha256(data)}"


async def _gone(stack: Stack, image: dict[str, Any], key: str) -> None:
    assert (await stack.fetch(image["url"])).status_code == 404
    assert not await stack.holds(key)
    assert key not in stack.blobs()
    if stack.backend == "local":
        assert (await stack.http.get(httpx.URL(image["thumbnailUrl"]).path)).status_code == 404
        assert media_files(stack.runtime.settings.media_dir) == []


async def _kept(stack: Stack, image: dict[str, Any], key: str, data: bytes) -> None:
    response = await stack.fetch(image["url"])
    assert response.status_code == 200
    assert response.content == data
    assert await stack.holds(key)


async def test_deleting_an_image_deletes_its_file(stack: Stack) -> None:
    # given
    video = await seed_video(stack.gql)
    data = image_bytes(color=(1, 2, 3))
    image = await _one(stack, video.project_id, data)
    key = _key(stack, data)
    await _kept(stack, image, key, data)

    # when
    deleted = await _delete(stack.gql, "deleteImage", image["id"])

    # then
    assert deleted["images"] == 1
    await _gone(stack, image, key)


async def test_a_file_shared_by_identical_uploads_stays_until_the_last_goes(stack: Stack) -> None:
    # given
    video = await seed_video(stack.gql)
    data = image_bytes(color=(4, 5, 6))
    first = await _one(stack, video.project_id, data, "first.png")
    second = await _one(stack, video.context_id, data, "second.png")
    key = _key(stack, data)

    # when
    await _delete(stack.gql, "deleteImage", first["id"])

    # then
    await _kept(stack, second, key, data)

    # when
    await _delete(stack.gql, "deleteImage", second["id"])

    # then
    await _gone(stack, second, key)


async def test_a_cross_project_copy_keeps_the_file_until_it_goes_too(stack: Stack) -> None:
    # given
    here = await seed_video(stack.gql, "Here")
    there = await seed_video(stack.gql, "There")
    data = image_bytes(color=(7, 8, 9))
    original = await _one(stack, here.project_id, data)
    copy_id = await copy_image(stack.gql, original["id"], there.project_id)
    copy = (await stack.gql.data(IMAGE_KEY, {"id": copy_id}))["image"]
    key = _key(stack, data)

    # when
    await _delete(stack.gql, "deleteProject", here.project_id)

    # then
    assert copy["id"] != original["id"]
    await _kept(stack, copy, key, data)

    # when
    await _delete(stack.gql, "deleteImage", copy_id)

    # then
    await _gone(stack, copy, key)


@pytest.mark.parametrize("which", ["frame", "context", "mainChat"])
async def test_clearing_a_chat_deletes_the_files_of_the_images_it_made(
    stack: Stack, tmp_path: Path, which: str
) -> None:
    # given
    video = await seed_video(stack.gql)
    chat = {
        "frame": await create_frame(stack.gql, video.id, "Dawn"),
        "context": video.context_id,
        "mainChat": video.main_chat_id,
    }[which]
    made_path = tmp_path / "made.png"
    PILImage.new("RGB", (30, 20), (250, 10, 10)).save(made_path, format="PNG")
    made_id, made_key = await generated_image(stack.seeds, stack.storage, chat, made_path)
    if which == "frame":
        await select_image(stack.gql, chat, made_id)
    uploaded_data = image_bytes(color=(10, 250, 10))
    uploaded = await _one(stack, chat, uploaded_data)
    mutation = {
        "frame": "clearFrameHistory",
        "context": "clearContextHistory",
        "mainChat": "clearMainChatHistory",
    }[which]
    assert await stack.holds(made_key)

    # when
    deleted = await _delete(stack.gql, mutation, chat)

    # then
    assert (deleted["messages"], deleted["images"]) == (1, 1)
    assert not await stack.holds(made_key)
    assert made_key not in stack.blobs()
    assert [i["id"] for i in await images_in(stack.gql, chat)] == [uploaded["id"]]
    await _kept(stack, uploaded, _key(stack, uploaded_data), uploaded_data)


@pytest.mark.parametrize("mutation", ["deleteFrame", "deleteVideo", "deleteProject"])
async def test_deleting_a_container_deletes_the_files_of_the_images_it_deletes(
    stack: Stack, tmp_path: Path, mutation: str
) -> None:
    # given
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Dawn")
    made_path = tmp_path / "made.png"
    PILImage.new("RGB", (30, 20), (5, 10, 250)).save(made_path, format="PNG")
    _, made_key = await generated_image(stack.seeds, stack.storage, frame, made_path)
    data = image_bytes(color=(20, 30, 40))
    uploaded = await _one(stack, frame, data)
    target = {"deleteFrame": frame, "deleteVideo": video.id, "deleteProject": video.project_id}
    key = _key(stack, data)

    # when
    deleted = await _delete(stack.gql, mutation, target[mutation])

    # then
    assert not await stack.holds(made_key)
    assert made_key not in stack.blobs()
    if mutation == "deleteFrame":  # an upload outlives the frame: it stays in the project
        assert deleted["images"] == 1
        await _kept(stack, uploaded, key, data)
    else:
        assert deleted["images"] == 2
        await _gone(stack, uploaded, key)


async def test_deleting_a_container_keeps_files_other_images_still_use(stack: Stack) -> None:
    # given
    video = await seed_video(stack.gql, "Doomed")
    survivor = await seed_video(stack.gql, "Survivor")
    data = image_bytes(color=(50, 60, 70))
    await _one(stack, video.context_id, data)
    kept = await _one(stack, survivor.main_chat_id, data)
    key = _key(stack, data)

    # when
    await _delete(stack.gql, "deleteVideo", video.id)

    # then
    await _kept(stack, kept, key, data)


# --- garbage collection ---------------------------------------------------------------------


async def test_collect_removes_orphans_and_reports_images_missing_their_file(
    stack: Stack, tmp_path: Path
) -> None:
    # given
    video = await seed_video(stack.gql)
    kept_data = image_bytes(color=(80, 80, 80))
    kept = await _one(stack, video.project_id, kept_data)
    lost_data = image_bytes(color=(90, 90, 90))
    lost = await _one(stack, video.context_id, lost_data)
    await stack.storage.delete(_key(stack, lost_data))  # behind the database's back
    orphan_path = tmp_path / "orphan.png"
    orphan_path.write_bytes(image_bytes(color=(100, 100, 100)))
    orphan = await stack.storage.put(
        orphan_path,
        checksum=sha256(orphan_path.read_bytes()),
        content_type="image/png",
        thumbnail=b"",
    )
    janitor = stack.runtime.janitor

    # when
    dry = await janitor.drift()

    # then
    assert dry.orphan_keys == [orphan.key]
    assert dry.images_missing_files == [pk_of(lost["id"])]
    assert await stack.holds(orphan.key)

    # when
    drift = await janitor.collect()

    # then
    assert drift.orphan_keys == [orphan.key]
    assert drift.images_missing_files == [pk_of(lost["id"])]
    assert not await stack.holds(orphan.key)
    await _kept(stack, kept, _key(stack, kept_data), kept_data)
    assert sorted(stack.blobs()) == [_key(stack, kept_data)]
    assert (await janitor.drift()).orphan_keys == []


def _run_cli(argv: list[str]) -> int:
    return main(argv)


@pytest.mark.usefixtures("cli_env")
async def test_the_gc_command_removes_an_orphan_file_and_reports_a_missing_one(
    gql: GraphQLClient,
    http: httpx.AsyncClient,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given
    video = await seed_video(gql)
    kept_data = image_bytes(color=(110, 1, 1))
    (kept,) = await upload_ok(http, video.project_id, [File("kept.png", kept_data)])
    lost_data = image_bytes(color=(120, 1, 1))
    (lost,) = await upload_ok(http, video.project_id, [File("lost.png", lost_data)])
    media = settings.media_dir
    (media / key_for(sha256(lost_data), "image/png")).unlink()
    orphan_data = image_bytes(color=(130, 1, 1))
    orphan_key = key_for(sha256(orphan_data), "image/png")
    (media / orphan_key).parent.mkdir(parents=True, exist_ok=True)
    (media / orphan_key).write_bytes(orphan_data)
    before = media_files(media)
    capsys.readouterr()

    # when
    dry_code = await asyncio.to_thread(_run_cli, ["gc", "--dry-run"])
    dry = json.loads(capsys.readouterr().out)

    # then
    assert dry_code == 0
    assert dry == {
        "orphanFiles": [orphan_key],
        "removed": 0,
        "imagesMissingFiles": [pk_of(lost["id"])],
        "staleTemporaries": [],
        "removedTemporaries": 0,
        "removedPreviews": 0,
    }
    assert media_files(media) == before

    # when
    code = await asyncio.to_thread(_run_cli, ["gc"])
    report = json.loads(capsys.readouterr().out)

    # then
    assert code == 0
    assert report == {
        "orphanFiles": [orphan_key],
        "removed": 1,
        "imagesMissingFiles": [pk_of(lost["id"])],
        "staleTemporaries": [],
        "removedTemporaries": 0,
        "removedPreviews": 0,
    }
    assert orphan_key not in media_files(media)
    assert (media / key_for(sha256(kept_data), "image/png")).is_file()
    assert (await http.get(httpx.URL(kept["url"]).path)).content == kept_data
    assert encode_id("Image", pk_of(lost["id"])) == lost["id"]
