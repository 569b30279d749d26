"""Chats and their messages: frames, a video's context, main chats."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Private

from storyframe.db import tables
from storyframe.domain.places import CHATS, Place, PlaceKind, place_in
from storyframe.schema.building import built
from storyframe.schema.connection import Connection
from storyframe.schema.images import Image, image_count_of_place, images_of_place
from storyframe.schema.nodes import Columns, Node, page_of, paged, related
from storyframe.schema.relations import Args, Target
from storyframe.schema.request_context import Loaders

if TYPE_CHECKING:
    from storyframe.schema.generation import Generation
    from storyframe.schema.projects import Video


def _message_count(loaders: Loaders, chat: Chat, _: Args) -> Target:
    return loaders.message_count, chat.place


@strawberry.interface(description="A chat: a frame, a video's context or a main chat.")
class Chat(Node):
    place: Private[Place]
    video_pk: Private[int]
    messages: Connection[Message] = paged(
        lambda loaders, chat, args: (loaders.messages_of_chat, (chat.place, page_of(args))),
        _message_count,
        description="The chat's messages, newest first.",
    )
    images: Connection[Image] = paged(
        images_of_place, image_count_of_place, description="The images in the chat, newest first."
    )
    message_count: int = related(_message_count)
    image_count: int = related(image_count_of_place)
    video: Annotated[Video, strawberry.lazy("storyframe.schema.projects")] = related(
        lambda loaders, chat, _: (loaders.video, chat.video_pk)
    )


_FRAME_COLUMNS = Columns(
    "id",
    "video_id",
    "title",
    "order",
    "selected_image_id",
    "created_at",
    "updated_at",
    "duration_ms",
    "caption",
)


@strawberry.type(description="One still of a video, and the chat in which it is made.")
class Frame(Chat):
    title: str
    order: int = strawberry.field(description="Position in the video: 0..n-1, contiguous.")
    selected_image_pk: Private[int | None]
    created_at: datetime
    updated_at: datetime
    duration_ms: int | None = strawberry.field(
        description="How long the frame is shown in an exported video, in milliseconds; null "
        "means the export's default (`secondsPerFrame`)."
    )
    caption: str | None = strawberry.field(
        description="Text shown with the frame in exports: burned in or as a subtitle in the "
        "video, under the image in the PDF storyboard."
    )
    selected_image: Image | None = related(
        lambda loaders, frame, _: (
            (loaders.image, frame.selected_image_pk)
            if frame.selected_image_pk is not None
            else None
        ),
        description="The image chosen for the video.",
    )

    @classmethod
    def from_row(cls, row: tables.Frame) -> Frame:
        (pk, video_pk, title, order, selected, created_at, updated_at, duration_ms, caption) = (
            _FRAME_COLUMNS.of(row)
        )
        return built(
            cls,
            pk=pk,
            place=Place(PlaceKind.FRAME, pk),
            video_pk=video_pk,
            title=title,
            order=order,
            selected_image_pk=selected,
            created_at=created_at,
            updated_at=updated_at,
            duration_ms=duration_ms,
            caption=caption,
        )


@strawberry.type(description="A video's context: text and reference images, itself a chat.")
class Context(Chat):
    content: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: tables.Context) -> Context:
        return cls(**_of_video(PlaceKind.CONTEXT, row), content=row.content)


@strawberry.type(description="A free-form generation chat of a video.")
class MainChat(Chat):
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: tables.MainChat) -> MainChat:
        return cls(**_of_video(PlaceKind.MAIN_CHAT, row), name=row.name)


def _of_video(kind: PlaceKind, row: tables.Context | tables.MainChat) -> dict[str, Any]:
    """What a context and a main chat take from their rows alike."""
    assert row.id is not None
    return {
        "pk": row.id,
        "place": Place(kind, row.id),
        "video_pk": row.video_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


_MESSAGE_COLUMNS = Columns(
    "id", "prompt", "with_context", "final_prompt", "created_at", *(kind.column for kind in CHATS)
)


@strawberry.type(description="A prompt in a chat, and the images it produced.")
class Message(Node):
    chat_place: Private[Place]
    prompt: str
    with_context: bool = strawberry.field(
        description="Whether the frame's prompt asked for the video's context. Always false in "
        "the context chat and main chats, whose prompts carry the context regardless."
    )
    final_prompt: str | None = strawberry.field(description="The prompt as actually sent.")
    created_at: datetime
    images: list[Image] = related(
        lambda loaders, m, _: (loaders.images_of_message, m.pk),
        description="The images the message produced.",
    )
    attached_images: list[Image] = related(
        lambda loaders, m, _: (loaders.attachments_of_message, m.pk),
        description="The reference images it attached.",
    )
    chat: Chat = related(
        lambda loaders, m, _: (loaders.of_type(m.chat_place.kind.type_name), m.chat_place.id),
        description="The chat the message belongs to.",
    )
    generation: Annotated[Generation, strawberry.lazy("storyframe.schema.generation")] | None = (
        related(
            lambda loaders, m, _: (loaders.generation_of_message, m.pk),
            description="The work done to make the message's images; null for a plain message.",
        )
    )

    @classmethod
    def from_row(cls, row: tables.Message) -> Message:
        pk, prompt, with_context, final_prompt, created_at, *chats = _MESSAGE_COLUMNS.of(row)
        chat = place_in(chats, CHATS)
        assert chat is not None, "a message is in a chat"
        return built(
            cls,
            pk=pk,
            chat_place=chat,
            prompt=prompt,
            with_context=with_context,
            final_prompt=final_prompt,
            created_at=created_at,
        )
