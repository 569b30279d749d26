"""The mutations of a video's chats: its context, its frames and its main chats, and clearing
any chat's history."""

from __future__ import annotations

from typing import Any

import strawberry

from storyframe.resolvers.mutation import deleting, mutation
from storyframe.resolvers.places import chat_of
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


async def _cleared(info: Info_, global_id: str, type_name: str) -> tuple[Any, DeletedCounts]:
    """Clear a chat's history: the chat as it is now, and what went with its messages."""
    chat = chat_of(global_id, type_name)
    deleted = await info.context.services.chats.clear_history(chat)
    return await info.context.loaders.of_type(type_name).load(chat.id), DeletedCounts.of(deleted)


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

    @mutation("Retitle a frame.")
    async def update_frame(self, info: Info_, input: inputs.UpdateFrameInput) -> FramePayload:
        pk = decode_pk(input.id, "Frame", "id")
        return FramePayload.of(await info.context.services.frames.rename(pk, input.title))

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

    @mutation("Rename a main chat.")
    async def update_main_chat(
        self, info: Info_, input: inputs.UpdateMainChatInput
    ) -> MainChatPayload:
        pk = decode_pk(input.id, "MainChat", "id")
        return MainChatPayload.of(await info.context.services.main_chats.rename(pk, input.name))

    delete_main_chat = deleting(
        "MainChat", lambda s: s.main_chats, "Delete a main chat with its messages and their images."
    )

    @mutation("Delete a frame's messages and their images; unselects.")
    async def clear_frame_history(
        self, info: Info_, input: inputs.ClearHistoryInput
    ) -> ClearFrameHistoryPayload:
        frame, deleted = await _cleared(info, input.id, "Frame")
        return ClearFrameHistoryPayload(frame=frame, deleted=deleted)

    @mutation("Delete a context's messages and their images.")
    async def clear_context_history(
        self, info: Info_, input: inputs.ClearHistoryInput
    ) -> ClearContextHistoryPayload:
        context, deleted = await _cleared(info, input.id, "Context")
        return ClearContextHistoryPayload(context=context, deleted=deleted)

    @mutation("Delete a main chat's messages and their images.")
    async def clear_main_chat_history(
        self, info: Info_, input: inputs.ClearHistoryInput
    ) -> ClearMainChatHistoryPayload:
        main_chat, deleted = await _cleared(info, input.id, "MainChat")
        return ClearMainChatHistoryPayload(main_chat=main_chat, deleted=deleted)
