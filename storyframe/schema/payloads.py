"""Mutation payloads: the changed objects and `userErrors`."""

from __future__ import annotations

import strawberry

from storyframe.db import tables
from storyframe.schema.chats import Context, Frame, MainChat
from storyframe.schema.errors import UserError
from storyframe.schema.images import Image
from storyframe.schema.places import ImagePlace
from storyframe.schema.projects import Project, Video
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

    @classmethod
    def of(cls, deleted_id: strawberry.ID, deleted: Deleted) -> DeletePayload:
        return cls(deleted_id=deleted_id, deleted=DeletedCounts.of(deleted))


@strawberry.type
class ProjectPayload(Payload):
    project: Project | None = None

    @classmethod
    def of(cls, row: tables.Project) -> ProjectPayload:
        return cls(project=Project.from_row(row))


@strawberry.type
class VideoPayload(Payload):
    video: Video | None = None

    @classmethod
    def of(cls, row: tables.Video) -> VideoPayload:
        return cls(video=Video.from_row(row))


@strawberry.type
class ContextPayload(Payload):
    context: Context | None = None

    @classmethod
    def of(cls, row: tables.Context) -> ContextPayload:
        return cls(context=Context.from_row(row))


@strawberry.type
class FramePayload(Payload):
    frame: Frame | None = None

    @classmethod
    def of(cls, row: tables.Frame) -> FramePayload:
        return cls(frame=Frame.from_row(row))


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

    @classmethod
    def of(cls, row: tables.MainChat) -> MainChatPayload:
        return cls(main_chat=MainChat.from_row(row))


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


@strawberry.type
class UploadImagesPayload(Payload):
    images: list[Image] | None = None
