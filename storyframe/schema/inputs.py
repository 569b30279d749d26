"""Mutation inputs. The subject of an update, delete, reorder or clear is `id`."""

from __future__ import annotations

import strawberry
from strawberry import ID
from strawberry.file_uploads import Upload

PLACE = "the ID of a Frame, Context, MainChat, or Project (its gallery)"


@strawberry.input
class CreateProjectInput:
    name: str


@strawberry.input
class UpdateProjectInput:
    id: ID
    name: str


@strawberry.input
class DeleteInput:
    id: ID


@strawberry.input
class CreateVideoInput:
    project_id: ID
    name: str


@strawberry.input
class UpdateVideoInput:
    id: ID
    name: str


@strawberry.input
class UpdateContextInput:
    id: ID
    content: str


@strawberry.input
class CreateFrameInput:
    video_id: ID
    title: str = ""
    order: int | None = strawberry.field(
        default=None, description="Where to insert the frame (clamped); appended when omitted."
    )


@strawberry.input
class UpdateFrameInput:
    id: ID
    title: str | None = strawberry.field(
        default=strawberry.UNSET, description="The new title; left as it is when absent."
    )
    duration_ms: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="How long the frame is shown in an exported video (100 ms to 10 minutes); "
        "null goes back to the export's default, absent leaves it as it is.",
    )
    caption: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="The frame's caption (at most 500 characters); null or blank removes it, "
        "absent leaves it as it is.",
    )


@strawberry.input
class ReorderFrameInput:
    id: ID
    new_order: int = strawberry.field(description="Clamped to 0..n-1; neighbours shift.")


@strawberry.input
class SelectFrameImageInput:
    frame_id: ID
    image_id: ID | None = strawberry.field(description="null clears the selection.")


@strawberry.input
class CreateMainChatInput:
    video_id: ID
    name: str


@strawberry.input
class UpdateMainChatInput:
    id: ID
    name: str


@strawberry.input
class ClearHistoryInput:
    id: ID


@strawberry.input
class CopyImageInput:
    image_id: ID
    target_id: ID = strawberry.field(description=PLACE)


@strawberry.input
class MoveImageInput:
    image_id: ID
    source_id: ID = strawberry.field(description=PLACE)
    target_id: ID = strawberry.field(description=PLACE)


@strawberry.input
class RemoveImageInput:
    image_id: ID
    source_id: ID = strawberry.field(description=PLACE)


@strawberry.input
class UploadImagesInput:
    target_id: ID = strawberry.field(description=PLACE)
    files: list[Upload] = strawberry.field(
        description="PNG, JPEG or WebP files. One refused file refuses them all."
    )
