"""Documents and helpers for the export tests: a video whose frames have selected images, the
export mutations, and waiting for an export to end."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storyframe.domain.ports import Blob, BlobStorage
from tests.support.clients import GraphQLClient
from tests.support.generating import generate
from tests.support.scenes import create_frames, seed_video, select_image

EXPORT = """
  id format status cancelRequested frameCount url byteSize contentType subtitlesUrl durationMs
  progress { done total fraction }
  settings { resolution fps secondsPerFrame transition transitionMs captions fit layout
             skipMissing }
  error { code message } attempts
  video { id name }
  createdAt startedAt finishedAt
"""
EXPORT_VIDEO = f"""
mutation($input: ExportVideoInput!) {{
  exportVideo(input: $input) {{ export {{ {EXPORT} }} userErrors {{ field message code }} }}
}}
"""
CANCEL_EXPORT = f"""
mutation($id: ID!) {{
  cancelExport(input: {{id: $id}}) {{ export {{ {EXPORT} }} userErrors {{ field message code }} }}
}}
"""
DELETE_EXPORT = """
mutation($id: ID!) {
  deleteExport(input: {id: $id}) { deletedId userErrors { field message code } }
}
"""
EXPORT_NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on Export {{ {EXPORT} }} }} }}"
EXPORTS = f"""
query($videoId: ID!, $first: Int, $after: String) {{
  exports(videoId: $videoId, first: $first, after: $after) {{
    totalCount nodes {{ {EXPORT} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
UPDATE_FRAME = """
mutation($input: UpdateFrameInput!) {
  updateFrame(input: $input) {
    frame { id title durationMs caption }
    userErrors { field message code }
  }
}
"""
FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
EXPORT_SECONDS = 120.0
"""A generous bound for a small export on a loaded machine; reached only when something is
wrong."""


@dataclass(frozen=True, slots=True)
class Storyboard:
    video_id: str
    frame_ids: list[str]
    image_ids: list[str]
    """The selected image of each frame (None where none is selected)."""


async def a_storyboard(
    gql: GraphQLClient, titles: Sequence[str], *, selected: Sequence[bool] | None = None
) -> Storyboard:
    """A video with a frame per title, each with one (placeholder) image made in it and, unless
    `selected` says otherwise, selected."""
    video = await seed_video(gql, "Export video")
    frame_ids = await create_frames(gql, video.id, titles)
    image_ids: list[str] = []
    for index, frame_id in enumerate(frame_ids):
        payload = await generate(gql, "Frame", frame_id, f"prompt of frame {index + 1}")
        assert payload["userErrors"] == [], payload["userErrors"]
        (image,) = payload["message"]["images"]
        image_ids.append(image["id"])
        if selected is None or selected[index]:
            await select_image(gql, frame_id, image["id"])
    return Storyboard(video.id, frame_ids, image_ids)


async def export_video(gql: GraphQLClient, video_id: str, **options: Any) -> dict[str, Any]:
    """The `exportVideo` payload (export and user errors)."""
    data = await gql.data(EXPORT_VIDEO, {"input": {"videoId": video_id, **options}})
    payload: dict[str, Any] = data["exportVideo"]
    return payload


async def export_of(gql: GraphQLClient, export_id: str) -> dict[str, Any] | None:
    data = await gql.data(EXPORT_NODE, {"id": export_id})
    node: dict[str, Any] | None = data["node"]
    return node


async def finished(
    gql: GraphQLClient, export_id: str, statuses: Sequence[str] = FINAL
) -> dict[str, Any]:
    """The export once its status is one of `statuses` (read again until then)."""
    async with asyncio.timeout(EXPORT_SECONDS):
        while True:
            export = await export_of(gql, export_id)
            assert export is not None, "the export is gone"
            if export["status"] in statuses:
                return export
            await asyncio.sleep(0.05)


async def exported(gql: GraphQLClient, video_id: str, **options: Any) -> dict[str, Any]:
    """An export that must succeed, once it has."""
    payload = await export_video(gql, video_id, **options)
    assert payload["userErrors"] == [], payload["userErrors"]
    export = await finished(gql, payload["export"]["id"])
    assert export["status"] == "SUCCEEDED", export
    return export


class HeldReads:
    """Blob storage whose reads wait until the test lets them go: an export fetching its images
    is held there, RUNNING, for as long as the test needs. Everything else passes through."""

    def __init__(self, storage: BlobStorage) -> None:
        self._storage = storage
        self.released = asyncio.Event()
        self.waiting = 0
        """Reads being held now."""

    async def put(
        self, source: Path, *, checksum: str, content_type: str, thumbnail: bytes
    ) -> Blob:
        return await self._storage.put(
            source, checksum=checksum, content_type=content_type, thumbnail=thumbnail
        )

    async def put_file(self, source: Path, *, checksum: str, extension: str) -> Blob:
        return await self._storage.put_file(source, checksum=checksum, extension=extension)

    async def delete(self, key: str) -> None:
        await self._storage.delete(key)

    async def keys(self) -> list[str]:
        return await self._storage.keys()

    async def exists(self, key: str) -> bool:
        return await self._storage.exists(key)

    async def read(self, key: str, *, url: str | None = None) -> bytes:
        self.waiting += 1
        try:
            await self.released.wait()
        finally:
            self.waiting -= 1
        return await self._storage.read(key, url=url)
