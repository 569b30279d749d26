"""Mutation payloads: the changed objects and `userErrors`."""

from __future__ import annotations

import strawberry

from storyframe.schema.errors import UserError
from storyframe.schema.types import Context, Frame, Image, ImagePlace, MainChat, Project, Video
from storyframe.services.deletion import Deleted


@strawberry.type(description="How many of each kind of object a delete or clear removed.")
class DeletedCounts:
    videos: int
    frames: int
    messages: int
    images: int

    @classmethod
    def of(cls, deleted: Deleted) -> DeletedCounts:
        return cls(
            videos=deleted.videos,
            frames=deleted.frames,
            messages=deleted.messages,
            images=deleted.images,
        )


@strawberry.type
class Payload:
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeletePayload(Payload):
    deleted_id: strawberry.ID | None = None
    deleted: DeletedCounts | None = None


@strawberry.type
class ProjectPayload(Payload):
    project: Project | None = None


@strawberry.type
class VideoPayload(Payload):
    video: Video | None = None


@strawberry.type
class ContextPayload(Payload):
    context: Context | None = None


@strawberry.type
class FramePayload(Payload):
    frame: Frame | None = None


@strawberry.type
class ReorderFramePayload(Payload):
    frame: Frame | None = None
    video: Video | None = strawberry.field(
        default=None, description="The video, whose frames now have their new orders."
    )


@strawberry.type
class DeleteFramePayload(DeletePayload):
    video: Video | None = None


@strawberry.type
class MainChatPayload(Payload):
    main_chat: MainChat | None = None


@strawberry.type
class ClearFrameHistoryPayload(Payload):
    frame: Frame | None = None
    deleted: DeletedCounts | None = None


@strawberry.type
class ClearContextHistoryPayload(Payload):
    context: Context | None = None
    deleted: DeletedCounts | None = None


@strawberry.type
class ClearMainChatHistoryPayload(Payload):
    main_chat: MainChat | None = None
    deleted: DeletedCounts | None = None


@strawberry.type
class ImagePayload(Payload):
    image: Image | None = None
    source: ImagePlace | None = None
    target: ImagePlace | None = None
