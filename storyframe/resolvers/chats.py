"""The mutations of a video's chats: its context, its frames and its main chats, and clearing
any chat's history."""

from __future__ import annotations

import strawberry

from storyframe.resolvers.mutation import clearing, deleting, mutation, renaming
from storyframe.schema import inputs
from storyframe.schema.chats import Frame
from storyframe.schema.ids import decode_pk
from storyframe.schema.payloads import (
    ClearContextHistoryPayload,
    ClearFrameHistoryPayload,
    ClearMainChatHistoryPayload,
    ContextPayload,
    DeletedCounts,
    DeleteFramePayload,
    FramePayload,
    MainChatPayload,
    ReorderFramePayload,
)
from storyframe.schema.request_context import Info_
from storyframe.services.frames import KEEP, FrameChanges


@strawberry.type
class ChatMutation:
    @mutation("Change the text of a video's context.")
    async def update_context(self, info: Info_, input: inputs.UpdateContextInput) -> ContextPayload:
        pk = decode_pk(input.id, "Context", "id")
        return ContextPayload.of(await info.context.services.contexts.update(pk, input.content))

    @mutation("Add a frame to a video, at `order` or at the end.")
    async def create_frame(self, info: Info_, input: inputs.CreateFrameInput) -> FramePayload:
        pk = decode_pk(input.video_id, "Video", "videoId")
        row = await info.context.services.frames.create(pk, input.title, input.order)
        return FramePayload.of(row)

    @mutation("Change a frame's title, its duration in exports, or its caption.")
    async def update_frame(self, info: Info_, input: inputs.UpdateFrameInput) -> FramePayload:
        pk = decode_pk(input.id, "Frame", "id")
        changes = FrameChanges(
            title=None if input.title is strawberry.UNSET else input.title,
            duration_ms=KEEP if input.duration_ms is strawberry.UNSET else input.duration_ms,
            caption=KEEP if input.caption is strawberry.UNSET else input.caption,
        )
        return FramePayload.of(await info.context.services.frames.update(pk, changes))

    @mutation("Move a frame to another position in its video.")
    async def reorder_frame(
        self, info: Info_, input: inputs.ReorderFrameInput
    ) -> ReorderFramePayload:
        pk = decode_pk(input.id, "Frame", "id")
        row = await info.context.services.frames.reorder(pk, input.new_order)
        video = await info.context.loaders.video.load(row.video_id)
        return ReorderFramePayload(frame=Frame.from_row(row), video=video)

    @mutation("Select one of a frame's images, or clear with null.")
    async def select_frame_image(
        self, info: Info_, input: inputs.SelectFrameImageInput
    ) -> FramePayload:
        frame = decode_pk(input.frame_id, "Frame", "frameId")
        image = (
            decode_pk(input.image_id, "Image", "imageId") if input.image_id is not None else None
        )
        return FramePayload.of(await info.context.services.frames.select_image(frame, image))

    @mutation("Delete a frame with its messages and their images.")
    async def delete_frame(self, info: Info_, input: inputs.DeleteInput) -> DeleteFramePayload:
        pk = decode_pk(input.id, "Frame", "id")
        frame = await info.context.loaders.frame.load(pk)
        deleted = await info.context.services.frames.delete(pk)
        video = await info.context.loaders.video.load(frame.video_pk) if frame else None
        return DeleteFramePayload(
            deleted_id=input.id, deleted=DeletedCounts.of(deleted), video=video
        )

    @mutation("Add a main chat to a video.")
    async def create_main_chat(
        self, info: Info_, input: inputs.CreateMainChatInput
    ) -> MainChatPayload:
        pk = decode_pk(input.video_id, "Video", "videoId")
        return MainChatPayload.of(await info.context.services.main_chats.create(pk, input.name))

    update_main_chat = renaming(
        "MainChat",
        lambda s: s.main_chats,
        inputs.UpdateMainChatInput,
        MainChatPayload,
        "Rename a main chat.",
    )

    delete_main_chat = deleting(
        "MainChat", lambda s: s.main_chats, "Delete a main chat with its messages and their images."
    )

    clear_frame_history = clearing(
        "Frame",
        ClearFrameHistoryPayload,
        "frame",
        "Delete a frame's messages and their images; unselects.",
    )
    clear_context_history = clearing(
        "Context",
        ClearContextHistoryPayload,
        "context",
        "Delete a context's messages and their images.",
    )
    clear_main_chat_history = clearing(
        "MainChat",
        ClearMainChatHistoryPayload,
        "main_chat",
        "Delete a main chat's messages and their images.",
    )
