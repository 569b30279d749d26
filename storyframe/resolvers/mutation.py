"""The Mutation root: parse the input, call a service, shape the payload."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry

from storyframe.domain.errors import DomainError
from storyframe.domain.places import Place
from storyframe.resolvers.places import chat_of, place_of
from storyframe.schema import inputs
from storyframe.schema.errors import UserError
from storyframe.schema.ids import decode_pk
from storyframe.schema.payloads import (
    ClearContextHistoryPayload,
    ClearFrameHistoryPayload,
    ClearMainChatHistoryPayload,
    ContextPayload,
    DeletedCounts,
    DeleteFramePayload,
    DeletePayload,
    FramePayload,
    ImagePayload,
    MainChatPayload,
    Payload,
    ProjectPayload,
    ReorderFramePayload,
    VideoPayload,
)
from storyframe.schema.types import (
    Context,
    Frame,
    Image,
    ImagePlace,
    Info_,
    MainChat,
    Project,
    Video,
    place_node,
)

P = TypeVar("P", bound=Payload)


async def attempt(payload: type[P], action: Callable[[], Awaitable[P]]) -> P:
    """The action's payload, or the payload carrying the user error that stopped it."""
    try:
        return await action()
    except DomainError as error:
        return payload(user_errors=[UserError.of(error)])


async def _attempt(info: Info_, payload: type[P], action: Callable[[], Awaitable[P]]) -> P:
    # Mutations run one after another; what an earlier one loaded may be stale now.
    info.context.loaders.clear_all()
    return await attempt(payload, action)


async def _place_node(info: Info_, place: Place) -> ImagePlace | None:
    return await place_node(info.context.loaders, place)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a project.")
    async def create_project(self, info: Info_, input: inputs.CreateProjectInput) -> ProjectPayload:
        async def act() -> ProjectPayload:
            row = await info.context.services.projects.create(input.name)
            return ProjectPayload(project=Project.from_row(row))

        return await _attempt(info, ProjectPayload, act)

    @strawberry.mutation(description="Rename a project.")
    async def update_project(self, info: Info_, input: inputs.UpdateProjectInput) -> ProjectPayload:
        async def act() -> ProjectPayload:
            pk = decode_pk(input.id, "Project", "id")
            row = await info.context.services.projects.rename(pk, input.name)
            return ProjectPayload(project=Project.from_row(row))

        return await _attempt(info, ProjectPayload, act)

    @strawberry.mutation(description="Delete a project with its videos and images.")
    async def delete_project(self, info: Info_, input: inputs.DeleteInput) -> DeletePayload:
        async def act() -> DeletePayload:
            deleted = await info.context.services.projects.delete(
                decode_pk(input.id, "Project", "id")
            )
            return DeletePayload(deleted_id=input.id, deleted=DeletedCounts.of(deleted))

        return await _attempt(info, DeletePayload, act)

    @strawberry.mutation(description="Create a video, with its context and a default main chat.")
    async def create_video(self, info: Info_, input: inputs.CreateVideoInput) -> VideoPayload:
        async def act() -> VideoPayload:
            pk = decode_pk(input.project_id, "Project", "projectId")
            row = await info.context.services.videos.create(pk, input.name)
            return VideoPayload(video=Video.from_row(row))

        return await _attempt(info, VideoPayload, act)

    @strawberry.mutation(description="Rename a video.")
    async def update_video(self, info: Info_, input: inputs.UpdateVideoInput) -> VideoPayload:
        async def act() -> VideoPayload:
            pk = decode_pk(input.id, "Video", "id")
            row = await info.context.services.videos.rename(pk, input.name)
            return VideoPayload(video=Video.from_row(row))

        return await _attempt(info, VideoPayload, act)

    @strawberry.mutation(description="Delete a video with its frames, chats, messages and images.")
    async def delete_video(self, info: Info_, input: inputs.DeleteInput) -> DeletePayload:
        async def act() -> DeletePayload:
            deleted = await info.context.services.videos.delete(decode_pk(input.id, "Video", "id"))
            return DeletePayload(deleted_id=input.id, deleted=DeletedCounts.of(deleted))

        return await _attempt(info, DeletePayload, act)

    @strawberry.mutation(description="Change the text of a video's context.")
    async def update_context(self, info: Info_, input: inputs.UpdateContextInput) -> ContextPayload:
        async def act() -> ContextPayload:
            pk = decode_pk(input.id, "Context", "id")
            row = await info.context.services.contexts.update(pk, input.content)
            return ContextPayload(context=Context.from_row(row))

        return await _attempt(info, ContextPayload, act)

    @strawberry.mutation(description="Add a frame to a video, at `order` or at the end.")
    async def create_frame(self, info: Info_, input: inputs.CreateFrameInput) -> FramePayload:
        async def act() -> FramePayload:
            pk = decode_pk(input.video_id, "Video", "videoId")
            row = await info.context.services.frames.create(pk, input.title, input.order)
            return FramePayload(frame=Frame.from_row(row))

        return await _attempt(info, FramePayload, act)

    @strawberry.mutation(description="Retitle a frame.")
    async def update_frame(self, info: Info_, input: inputs.UpdateFrameInput) -> FramePayload:
        async def act() -> FramePayload:
            pk = decode_pk(input.id, "Frame", "id")
            row = await info.context.services.frames.rename(pk, input.title)
            return FramePayload(frame=Frame.from_row(row))

        return await _attempt(info, FramePayload, act)

    @strawberry.mutation(description="Move a frame to another position in its video.")
    async def reorder_frame(
        self, info: Info_, input: inputs.ReorderFrameInput
    ) -> ReorderFramePayload:
        async def act() -> ReorderFramePayload:
            pk = decode_pk(input.id, "Frame", "id")
            row = await info.context.services.frames.reorder(pk, input.new_order)
            video = await info.context.loaders.video.load(row.video_id)
            return ReorderFramePayload(frame=Frame.from_row(row), video=video)

        return await _attempt(info, ReorderFramePayload, act)

    @strawberry.mutation(description="Select one of a frame's images, or clear with null.")
    async def select_frame_image(
        self, info: Info_, input: inputs.SelectFrameImageInput
    ) -> FramePayload:
        async def act() -> FramePayload:
            frame = decode_pk(input.frame_id, "Frame", "frameId")
            image = (
                decode_pk(input.image_id, "Image", "imageId")
                if input.image_id is not None
                else None
            )
            row = await info.context.services.frames.select_image(frame, image)
            return FramePayload(frame=Frame.from_row(row))

        return await _attempt(info, FramePayload, act)

    @strawberry.mutation(description="Delete a frame with its messages and their images.")
    async def delete_frame(self, info: Info_, input: inputs.DeleteInput) -> DeleteFramePayload:
        async def act() -> DeleteFramePayload:
            pk = decode_pk(input.id, "Frame", "id")
            frame = await info.context.loaders.frame.load(pk)
            deleted = await info.context.services.frames.delete(pk)
            video = await info.context.loaders.video.load(frame.video_pk) if frame else None
            return DeleteFramePayload(
                deleted_id=input.id, deleted=DeletedCounts.of(deleted), video=video
            )

        return await _attempt(info, DeleteFramePayload, act)

    @strawberry.mutation(description="Add a main chat to a video.")
    async def create_main_chat(
        self, info: Info_, input: inputs.CreateMainChatInput
    ) -> MainChatPayload:
        async def act() -> MainChatPayload:
            pk = decode_pk(input.video_id, "Video", "videoId")
            row = await info.context.services.main_chats.create(pk, input.name)
            return MainChatPayload(main_chat=MainChat.from_row(row))

        return await _attempt(info, MainChatPayload, act)

    @strawberry.mutation(description="Rename a main chat.")
    async def update_main_chat(
        self, info: Info_, input: inputs.UpdateMainChatInput
    ) -> MainChatPayload:
        async def act() -> MainChatPayload:
            pk = decode_pk(input.id, "MainChat", "id")
            row = await info.context.services.main_chats.rename(pk, input.name)
            return MainChatPayload(main_chat=MainChat.from_row(row))

        return await _attempt(info, MainChatPayload, act)

    @strawberry.mutation(description="Delete a main chat with its messages and their images.")
    async def delete_main_chat(self, info: Info_, input: inputs.DeleteInput) -> DeletePayload:
        async def act() -> DeletePayload:
            pk = decode_pk(input.id, "MainChat", "id")
            deleted = await info.context.services.main_chats.delete(pk)
            return DeletePayload(deleted_id=input.id, deleted=DeletedCounts.of(deleted))

        return await _attempt(info, DeletePayload, act)

    @strawberry.mutation(description="Delete a frame's messages and their images; unselects.")
    async def clear_frame_history(
        self, info: Info_, input: inputs.ClearHistoryInput
    ) -> ClearFrameHistoryPayload:
        async def act() -> ClearFrameHistoryPayload:
            chat = chat_of(input.id, "Frame")
            deleted = await info.context.services.chats.clear_history(chat)
            return ClearFrameHistoryPayload(
                frame=await info.context.loaders.frame.load(chat.id),
                deleted=DeletedCounts.of(deleted),
            )

        return await _attempt(info, ClearFrameHistoryPayload, act)

    @strawberry.mutation(description="Delete a context's messages and their images.")
    async def clear_context_history(
        self, info: Info_, input: inputs.ClearHistoryInput
    ) -> ClearContextHistoryPayload:
        async def act() -> ClearContextHistoryPayload:
            chat = chat_of(input.id, "Context")
            deleted = await info.context.services.chats.clear_history(chat)
            return ClearContextHistoryPayload(
                context=await info.context.loaders.context.load(chat.id),
                deleted=DeletedCounts.of(deleted),
            )

        return await _attempt(info, ClearContextHistoryPayload, act)

    @strawberry.mutation(description="Delete a main chat's messages and their images.")
    async def clear_main_chat_history(
        self, info: Info_, input: inputs.ClearHistoryInput
    ) -> ClearMainChatHistoryPayload:
        async def act() -> ClearMainChatHistoryPayload:
            chat = chat_of(input.id, "MainChat")
            deleted = await info.context.services.chats.clear_history(chat)
            return ClearMainChatHistoryPayload(
                main_chat=await info.context.loaders.main_chat.load(chat.id),
                deleted=DeletedCounts.of(deleted),
            )

        return await _attempt(info, ClearMainChatHistoryPayload, act)

    @strawberry.mutation(
        description="Make an image appear in another place too. Into another project, the copy "
        "is a new image of that project sharing the stored file."
    )
    async def copy_image(self, info: Info_, input: inputs.CopyImageInput) -> ImagePayload:
        async def act() -> ImagePayload:
            image = decode_pk(input.image_id, "Image", "imageId")
            target = place_of(input.target_id, "targetId")
            row = await info.context.services.images.copy(image, target)
            return ImagePayload(image=Image.from_row(row), target=await _place_node(info, target))

        return await _attempt(info, ImagePayload, act)

    @strawberry.mutation(
        description="Move an image from one place to another. Into another project, the image "
        "leaves every place of its old project and belongs to the new one."
    )
    async def move_image(self, info: Info_, input: inputs.MoveImageInput) -> ImagePayload:
        async def act() -> ImagePayload:
            image = decode_pk(input.image_id, "Image", "imageId")
            source = place_of(input.source_id, "sourceId")
            target = place_of(input.target_id, "targetId")
            row = await info.context.services.images.move(image, source, target)
            return ImagePayload(
                image=Image.from_row(row),
                source=await _place_node(info, source),
                target=await _place_node(info, target),
            )

        return await _attempt(info, ImagePayload, act)

    @strawberry.mutation(description="Take an image out of one place; it stays in its project.")
    async def remove_image(self, info: Info_, input: inputs.RemoveImageInput) -> ImagePayload:
        async def act() -> ImagePayload:
            image = decode_pk(input.image_id, "Image", "imageId")
            source = place_of(input.source_id, "sourceId")
            row = await info.context.services.images.remove(image, source)
            return ImagePayload(image=Image.from_row(row), source=await _place_node(info, source))

        return await _attempt(info, ImagePayload, act)

    @strawberry.mutation(description="Delete an image from everywhere it appears.")
    async def delete_image(self, info: Info_, input: inputs.DeleteInput) -> DeletePayload:
        async def act() -> DeletePayload:
            deleted = await info.context.services.images.delete(decode_pk(input.id, "Image", "id"))
            return DeletePayload(deleted_id=input.id, deleted=DeletedCounts.of(deleted))

        return await _attempt(info, DeletePayload, act)
