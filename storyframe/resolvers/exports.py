"""Exports in the API: `exportVideo`, `cancelExport`, `deleteExport` and the `exports` of a
video (their events are the Subscription root's)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.dataloader import DataLoader

from storyframe.db import tables
from storyframe.domain.errors import NotFound
from storyframe.domain.pages import PageRequest
from storyframe.resolvers.mutation import mutation
from storyframe.schema.connection import Connection
from storyframe.schema.exports import (
    DeleteExportPayload,
    Export,
    ExportIdInput,
    ExportPayload,
    ExportVideoInput,
)
from storyframe.schema.ids import decode_cursor, decode_pk, encode_id
from storyframe.schema.nodes import AFTER, FIRST
from storyframe.schema.request_context import Info_
from storyframe.services.export.requests import ExportOptions, ExportRequest


@strawberry.type
class ExportMutation:
    @mutation(
        "Export a video's selected frames (in order) as an MP4, a PDF storyboard or a ZIP. "
        "Answers at once with a QUEUED export; follow it with `exportUpdated`."
    )
    async def export_video(self, info: Info_, input: ExportVideoInput) -> ExportPayload:
        request = ExportRequest(
            video_id=decode_pk(input.video_id, "Video", "videoId"),
            format=input.format,
            options=ExportOptions(
                resolution=input.resolution,
                fps=input.fps,
                seconds_per_frame=input.seconds_per_frame,
                transition=input.transition,
                transition_ms=input.transition_ms,
                captions=input.captions,
                fit=input.fit,
                layout=input.layout,
            ),
            skip_missing=input.skip_missing,
        )
        row = await info.context.services.exports.request(request, input.idempotency_key)
        return ExportPayload(export=Export.from_row(row))

    @mutation("Stop a queued or running export; nothing is stored.")
    async def cancel_export(self, info: Info_, input: ExportIdInput) -> ExportPayload:
        pk = decode_pk(input.id, "Export", "id")
        return ExportPayload(export=Export.from_row(await info.context.services.exports.cancel(pk)))

    @mutation("Delete an export and its file (a running one is cancelled first).")
    async def delete_export(self, info: Info_, input: ExportIdInput) -> DeleteExportPayload:
        pk = decode_pk(input.id, "Export", "id")
        await info.context.services.exports.delete(pk)
        return DeleteExportPayload(deleted_id=strawberry.ID(encode_id("Export", pk)))


@strawberry.type
class ExportQuery:
    @strawberry.field(description="A video's exports, newest first.")
    async def exports(
        self,
        info: Info_,
        video_id: strawberry.ID,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Connection[Export]:
        pk = decode_pk(video_id, "Video", "videoId")
        page = PageRequest.of(first, decode_cursor(after))
        reads = info.context.services.reads
        if pk not in await reads.get_many(tables.Video, [pk]):
            raise NotFound("video", ["videoId"])
        rows = await reads.exports(pk, page)

        async def count(keys: list[int]) -> list[int]:
            return [await reads.count_exports(pk) for _ in keys]

        return Connection.of(
            [Export.from_row(row) for row in rows], page, (DataLoader(load_fn=count), 0)
        )
