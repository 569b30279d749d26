"""Exports in the API: a video's selected frames as an MP4, a PDF storyboard or a ZIP; the
inputs and payloads of the export mutations, and the events of a running export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry import Private

from storyframe.db import tables
from storyframe.domain import exports, jobs
from storyframe.schema.errors import ErrorCode
from storyframe.schema.nodes import Node
from storyframe.schema.payloads import Payload
from storyframe.schema.projects import Video
from storyframe.schema.request_context import Info_
from storyframe.services.export import requests, sheets

ExportFormat = strawberry.enum(
    exports.ExportFormat,
    name="ExportFormat",
    description="MP4: the video (H.264). PDF: a storyboard sheet. ZIP: the selected images as "
    "originals, numbered, with a JSON manifest and the PDF storyboard.",
)
ExportStatus = strawberry.enum(
    exports.ExportStatus,
    name="ExportStatus",
    description="Where an export stands. QUEUED and RUNNING are not final; the rest are.",
)
ExportResolution = strawberry.enum(
    sheets.Resolution,
    name="ExportResolution",
    description="The video's size: 1280x720, 1920x1080, 3840x2160 (16:9), or SOURCE: the "
    "first image's aspect ratio, at most 1080 lines high.",
)
ExportTransition = strawberry.enum(
    sheets.Transition, name="ExportTransition", description="Between two frames of the video."
)
ExportCaptions = strawberry.enum(
    sheets.Captions,
    name="ExportCaptions",
    description="Frames' captions in the video: none, drawn into the picture, or as "
    "subtitles (a WebVTT file beside the video, `subtitlesUrl`).",
)
ExportFit = strawberry.enum(
    sheets.Fit,
    name="ExportFit",
    description="How an image of another aspect ratio fills the video: LETTERBOX shows all "
    "of it with black bars, CROP fills the picture and cuts the overflow evenly.",
)
StoryboardLayout = strawberry.enum(
    sheets.Layout,
    name="StoryboardLayout",
    description="Frames per page of the PDF storyboard: one, 2x2 or 3x3.",
)


@strawberry.type(description="How far an export has got: steps done of the steps it takes.")
class ExportProgress:
    done: int
    total: int

    @strawberry.field(description="`done / total`, from 0 to 1.")
    def fraction(self) -> float:
        return round(self.done / self.total, 4) if self.total else 0.0


@strawberry.type(description="What an export was asked for, with every default filled in.")
class ExportSettings:
    resolution: ExportResolution  # type: ignore[valid-type]
    fps: int
    seconds_per_frame: float
    transition: ExportTransition  # type: ignore[valid-type]
    transition_ms: int
    captions: ExportCaptions  # type: ignore[valid-type]
    fit: ExportFit  # type: ignore[valid-type]
    layout: StoryboardLayout  # type: ignore[valid-type]
    skip_missing: bool


@strawberry.type(description="Why an export failed or stopped.")
class ExportError:
    code: ErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.type(
    description="A video's selected frames made into one file, as a job: queued, then running "
    "with its `progress`, then SUCCEEDED with a permanent `url` (or FAILED, CANCELLED)."
)
class Export(Node):
    video_pk: Private[int]
    format: ExportFormat  # type: ignore[valid-type]
    status: ExportStatus  # type: ignore[valid-type]
    progress: ExportProgress
    settings: ExportSettings
    frame_count: int = strawberry.field(description="How many frames the export takes.")
    url: str | None = strawberry.field(description="Where the file is, once SUCCEEDED.")
    byte_size: int | None
    content_type: str | None
    subtitles_url: str | None = strawberry.field(
        description="The WebVTT subtitles beside an MP4 exported with `captions: SUBTITLES`."
    )
    duration_ms: int | None = strawberry.field(description="The MP4's length.")
    error: ExportError | None
    attempts: int = strawberry.field(
        description="How many times a process started it: more than 1 when a process stopped "
        "in the middle (it starts again from the beginning)."
    )
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @strawberry.field(graphql_type=Video, description="The exported video.")
    async def video(self, info: Info_) -> Any:
        return await info.context.loaders.video.load(self.video_pk)

    @classmethod
    def from_row(cls, row: tables.Export) -> Export:
        assert row.id is not None
        options = requests.ExportOptions.of_record(row.options)
        error = (
            ExportError(code=_code(row.error_code), message=row.error_message or "")
            if row.error_code
            else None
        )
        return cls(
            pk=row.id,
            video_pk=row.video_id,
            format=exports.ExportFormat(row.format),
            status=exports.ExportStatus(row.status),
            progress=ExportProgress(done=row.progress_done, total=row.progress_total),
            settings=ExportSettings(
                resolution=options.resolution,
                fps=options.fps,
                seconds_per_frame=options.seconds_per_frame,
                transition=options.transition,
                transition_ms=options.transition_ms,
                captions=options.captions,
                fit=options.fit,
                layout=options.layout,
                skip_missing=bool(row.options.get("skip_missing", False)),
            ),
            frame_count=len(row.frame_ids),
            url=row.url,
            byte_size=row.byte_size,
            content_type=row.content_type,
            subtitles_url=row.subtitles_url,
            duration_ms=row.duration_ms,
            error=error,
            attempts=row.attempts,
            cancel_requested=row.cancel_requested,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


def _code(value: str) -> Any:
    from storyframe.domain.errors import ErrorCode as Codes

    try:
        return Codes(value)
    except ValueError:
        return Codes.EXPORT_FAILED


@strawberry.input
class ExportVideoInput:
    video_id: strawberry.ID
    format: ExportFormat  # type: ignore[valid-type]
    resolution: ExportResolution = sheets.Resolution.P1080  # type: ignore[valid-type]
    fps: int = strawberry.field(default=24, description="Frames per second of the video, 1 to 60.")
    seconds_per_frame: float = strawberry.field(
        default=3.0,
        description="How long a frame without its own `durationMs` is shown (0.1 to 600).",
    )
    transition: ExportTransition = sheets.Transition.NONE  # type: ignore[valid-type]
    transition_ms: int = strawberry.field(
        default=500,
        description="A crossfade's length (0 to 5000), taken from the end of the frame before "
        "it, at most half of the shorter frame: the video's length stays the frames' sum.",
    )
    captions: ExportCaptions = sheets.Captions.NONE  # type: ignore[valid-type]
    fit: ExportFit = sheets.Fit.LETTERBOX  # type: ignore[valid-type]
    layout: StoryboardLayout = sheets.Layout.GRID_2X2  # type: ignore[valid-type]
    skip_missing: bool = strawberry.field(
        default=False,
        description="Leave out frames without a selected image (otherwise they are a user "
        "error, MISSING_SELECTION, naming them).",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="The same key with the same input within 24 hours answers with the same "
        "export and starts nothing; with other input, IDEMPOTENCY_CONFLICT.",
    )


@strawberry.input
class ExportIdInput:
    id: strawberry.ID


@strawberry.type
class ExportPayload(Payload):
    export: Export | None = None


@strawberry.type
class DeleteExportPayload(Payload):
    deleted_id: strawberry.ID | None = None


ExportEventKind = strawberry.enum(
    jobs.ExportEventKind,
    name="ExportEventKind",
    description="STATE (the export as it stands, first), QUEUED, STARTED, PROGRESS, "
    "CANCEL_REQUESTED and FINISHED (the last).",
)


@strawberry.type(description="A change of an export, with the export after it.")
class ExportEvent:
    kind: ExportEventKind  # type: ignore[valid-type]
    export: Export
