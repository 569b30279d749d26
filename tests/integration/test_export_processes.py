"""Exports across real processes, with images in (a fake) Cloudinary read through blob storage:
a subscriber over a real WebSocket sees an export queued, started, going further and finished;
a process killed in the middle of an export leaves it to the next process, which starts it
again and stores one whole file, with no work files left behind. On PostgreSQL the same holds
for `storyframe worker` processes, the API process running none itself."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from tests.support.documents import CREATE_FRAME, CREATE_PROJECT, CREATE_VIDEO, SELECT_FRAME_IMAGE
from tests.support.exporting import DELETE_EXPORT, EXPORT_NODE, EXPORT_VIDEO, FINAL
from tests.support.fake_cloudinary import FakeCloudinary, fake_cloudinary_fixture  # noqa: F401
from tests.support.servers import (
    Server,
    graphql,
    running_server,
    running_worker,
    sign_up_over_http,
)
from tests.support.subscriptions import subscriptions

GENERATE = """
mutation($frameId: ID!) {
  generateFrameImages(input: {frameId: $frameId, prompt: "a lighthouse", wait: true}) {
    message { images { id } }
    userErrors { code }
  }
}
"""
EXPORT_UPDATED = """
subscription($id: ID!) {
  exportUpdated(id: $id) { kind export { status progress { done total } url } }
}
"""
VIDEO_UPDATED = """
subscription($videoId: ID!) {
  videoUpdated(videoId: $videoId) {
    __typename
    ... on ExportEvent { exportKind: kind export { id status progress { done } url } }
  }
}
"""


def _env(database_url: str, cloudinary: FakeCloudinary, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "STORAGE_BACKEND": "cloudinary",
        "CLOUDINARY_URL": cloudinary.url,
        "GENERATION_HEARTBEAT_SECONDS": "0.5",
        "GENERATION_SHUTDOWN_GRACE_SECONDS": "0.5",
        **extra,
    }


def _storyboard(client: httpx.Client, frames: int) -> str:
    """A video with `frames` frames, each with a selected placeholder image: its ID."""
    project = graphql(client, CREATE_PROJECT, {"name": "P"})["createProject"]["project"]
    video = graphql(client, CREATE_VIDEO, {"projectId": project["id"], "name": "Lighthouse"})
    video_id: str = video["createVideo"]["video"]["id"]
    for index in range(frames):
        frame = graphql(client, CREATE_FRAME, {"videoId": video_id, "title": f"Shot {index}"})
        frame_id = frame["createFrame"]["frame"]["id"]
        made = graphql(client, GENERATE, {"frameId": frame_id})["generateFrameImages"]
        assert made["userErrors"] == []
        (image,) = made["message"]["images"]
        graphql(client, SELECT_FRAME_IMAGE, {"frameId": frame_id, "imageId": image["id"]})
    return video_id


def _export(client: httpx.Client, export_id: str) -> dict[str, Any]:
    node: dict[str, Any] = graphql(client, EXPORT_NODE, {"id": export_id})["node"]
    return node


def _start_export(client: httpx.Client, video_id: str) -> str:
    variables = {"input": {"videoId": video_id, "format": "MP4", "fps": 4, "secondsPerFrame": 1}}
    payload = graphql(client, EXPORT_VIDEO, variables)["exportVideo"]
    assert payload["userErrors"] == []
    export_id: str = payload["export"]["id"]
    return export_id


async def _until(check: Any) -> None:
    for _ in range(2400):  # a generous bound for a loaded machine
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


def _check_stored_video(cloudinary: FakeCloudinary, frames: int) -> None:
    """One exported file in storage: a whole MP4 of `frames` seconds."""
    files = [asset for asset in cloudinary.assets.values() if asset.format == "raw"]
    assert len(files) == 1, [asset.public_id for asset in files]
    with av.open(io.BytesIO(files[0].data), mode="r") as container:
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(stream))
    assert decoded == frames * 4


@contextmanager
def _server(
    tmp_path: Path, env: dict[str, str], log: str = "api.log"
) -> Iterator[tuple[Server, httpx.Client]]:
    with running_server(tmp_path / "data", tmp_path / log, **env) as (server, client):
        yield server, client


async def test_a_subscriber_sees_an_export_go_further_and_finish(
    database_url: str, tmp_path: Path, fake_cloudinary: FakeCloudinary
) -> None:
    with _server(tmp_path, _env(database_url, fake_cloudinary)) as (server, client):
        token = sign_up_over_http(client, "watcher@storyframe.test")
        video_id = _storyboard(client, frames=2)
        # the export is held reading its second image, after the first one
        fake_cloudinary.hold_deliveries(after=1)
        async with subscriptions(server.base_url, token) as socket:
            video_events = await socket.subscribe(VIDEO_UPDATED, {"videoId": video_id})
            export_id = _start_export(client, video_id)
            one = await socket.subscribe(EXPORT_UPDATED, {"id": export_id})
            seen: list[dict[str, Any]] = []
            of_video: list[dict[str, Any]] = []
            async for data in _interleaved(socket, one, video_events, of_video):
                seen.append(data)
                if data["kind"] == "PROGRESS" and data["export"]["progress"]["done"] >= 1:
                    fake_cloudinary.release_deliveries()
                if data["kind"] == "FINISHED":
                    break
            assert seen[0]["kind"] == "STATE"
            assert seen[0]["export"]["status"] in ("QUEUED", "RUNNING")
            assert any(event["kind"] == "PROGRESS" for event in seen)
            assert seen[-1]["export"]["status"] == "SUCCEEDED"
            assert seen[-1]["export"]["url"]
            dones = [event["export"]["progress"]["done"] for event in seen]
            assert dones == sorted(dones)  # it only ever goes further
            # and the video's subscription told the export's changes too
            # (its first is QUEUED, or STATE when the export was made before the subscription
            # had read what stands: the mutation and the subscription race to the server)
            told = [e for e in of_video if e["__typename"] == "ExportEvent"]
            assert told[0]["exportKind"] in ("STATE", "QUEUED")
            assert {e["export"]["id"] for e in told} == {export_id}
            assert "PROGRESS" in [e["exportKind"] for e in told]
    _check_stored_video(fake_cloudinary, frames=2)


async def _interleaved(socket: Any, wanted: str, other: str, of_other: list[dict[str, Any]]) -> Any:
    """The data of `wanted`'s events; those of the video's subscription (`other`), read
    alongside, go to `of_other`."""
    while True:
        message = await socket.message()
        if message.get("id") == other:
            of_other.append(message["payload"]["data"]["videoUpdated"])
            continue
        assert message.get("id") == wanted, message
        if message["type"] == "complete":
            return
        yield message["payload"]["data"]["exportUpdated"]


async def test_an_export_killed_with_its_process_is_finished_by_the_next(
    database_url: str, tmp_path: Path, fake_cloudinary: FakeCloudinary
) -> None:
    env = _env(database_url, fake_cloudinary)
    with _server(tmp_path, env, "first.log") as (server, client):
        token = sign_up_over_http(client, "survivor@storyframe.test")
        video_id = _storyboard(client, frames=3)
        fake_cloudinary.hold_deliveries(after=1)
        export_id = _start_export(client, video_id)
        await _until(lambda: fake_cloudinary.deliveries_waiting == 1)
        assert _export(client, export_id)["status"] == "RUNNING"
        # when: the process is killed in the middle of the export
        server.kill()
    fake_cloudinary.release_deliveries()
    # then: the next process starts it again and finishes it
    with _server(tmp_path, env, "second.log") as (_, client):
        client.headers["Authorization"] = f"Bearer {token}"
        await _until(lambda: _export(client, export_id)["status"] in FINAL)
        done = _export(client, export_id)
    assert done["status"] == "SUCCEEDED", done
    assert done["attempts"] == 2
    assert done["durationMs"] == 3000
    _check_stored_video(fake_cloudinary, frames=3)
    assert list((tmp_path / "data" / "tmp").glob("export-*")) == []


@pytest.mark.parametrize("dialect", ["postgresql"])
async def test_workers_run_exports_and_take_over_a_killed_ones(
    database_url: str, tmp_path: Path, fake_cloudinary: FakeCloudinary
) -> None:
    env = _env(database_url, fake_cloudinary, GENERATION_JOBS_IN_PROCESS="false")
    data = tmp_path / "data"
    with (
        _server(tmp_path, env) as (server, client),
        running_worker(data, tmp_path / "worker-1.log", **env) as first,
    ):
        token = sign_up_over_http(client, "worker@storyframe.test")
        video_id = _storyboard(client, frames=2)
        fake_cloudinary.hold_deliveries(after=1)
        async with subscriptions(server.base_url, token) as socket:
            export_id = _start_export(client, video_id)
            watched = await socket.subscribe(EXPORT_UPDATED, {"id": export_id})
            await _until(lambda: fake_cloudinary.deliveries_waiting == 1)
            # the API process hears the worker's events through the database
            kinds: list[str] = []
            async for event in socket.events(watched):
                kinds.append(event["exportUpdated"]["kind"])
                if event["exportUpdated"]["export"]["status"] == "RUNNING":
                    break
        # when: the worker running it is killed, another takes it over
        first.kill()
        fake_cloudinary.release_deliveries()
        with running_worker(data, tmp_path / "worker-2.log", **env):
            await _until(lambda: _export(client, export_id)["status"] in FINAL)
        done = _export(client, export_id)
    assert kinds[-1] in ("STATE", "STARTED", "PROGRESS")
    assert done["status"] == "SUCCEEDED", done
    assert done["attempts"] == 2
    _check_stored_video(fake_cloudinary, frames=2)
    assert list((data / "tmp").glob("export-*")) == []


@pytest.mark.parametrize("dialect", ["sqlite"])
async def test_deleting_a_running_export_completes_its_subscription(
    database_url: str, tmp_path: Path, fake_cloudinary: FakeCloudinary
) -> None:
    with _server(tmp_path, _env(database_url, fake_cloudinary)) as (server, client):
        token = sign_up_over_http(client, "deleter@storyframe.test")
        video_id = _storyboard(client, frames=1)
        fake_cloudinary.hold_deliveries()
        export_id = _start_export(client, video_id)
        await _until(lambda: fake_cloudinary.deliveries_waiting == 1)
        async with subscriptions(server.base_url, token) as socket:
            watched = await socket.subscribe(EXPORT_UPDATED, {"id": export_id})
            first = await socket.message()
            assert first["payload"]["data"]["exportUpdated"]["kind"] == "STATE"
            deleted = graphql(client, DELETE_EXPORT, {"id": export_id})["deleteExport"]
            assert deleted["userErrors"] == []
            fake_cloudinary.release_deliveries()
            # the subscription ends: nothing more will come of a deleted export
            message = await socket.message()
            assert (message["id"], message["type"]) == (watched, "complete")
        await _until(lambda: list((tmp_path / "data" / "tmp").glob("export-*")) == [])
    assert [a for a in fake_cloudinary.assets.values() if a.format == "raw"] == []
