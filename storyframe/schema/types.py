"""The object types of the API. Fields that need data ask the request's DataLoaders."""

from __future__ import annotations

from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Annotated, Any

import strawberry
from strawberry import Info, Private

from storyframe.db import tables
from storyframe.domain.model_catalogue import PLACEHOLDER_MODEL
from storyframe.domain.pages import PageRequest
from storyframe.domain.places import Place, PlaceKind, chat_of
from storyframe.schema.connection import Connection
from storyframe.schema.errors import ErrorCode
from storyframe.schema.ids import decode_cursor, decode_pk, encode_id
from storyframe.schema.relations import Args, Relation, relation
from storyframe.schema.request_context import Loaders, RequestContext
from storyframe.services import generation

Info_ = Info[RequestContext, None]

FIRST = strawberry.argument(description="How many items to return: 0 to 100, 20 when omitted.")
AFTER = strawberry.argument(description="The `endCursor` of the previous page.")


class _Columns:
    """Reads a row's columns straight from its instance dict, where SQLAlchemy keeps the loaded
    values (`InstanceState.dict`): lists wrap hundreds of rows per request, and going through the
    ORM's attribute descriptors costs more than building the object. A row missing a value
    (expired, deferred) is read through the descriptors."""

    def __init__(self, *names: str) -> None:
        self._items = itemgetter(*names)
        self._attributes = attrgetter(*names)

    def of(self, row: object) -> Any:
        try:
            return self._items(vars(row))
        except KeyError:
            return self._attributes(row)


def page_of(args: Args) -> PageRequest:
    return PageRequest.of(args.get("first"), decode_cursor(args.get("after")))


@strawberry.interface(description="An object with a global ID; `node(id:)` fetches it again.")
class Node:
    id: strawberry.ID


_IMAGE_COLUMNS = _Columns(
    "id",
    "project_id",
    "message_id",
    "url",
    "thumbnail_url",
    "width",
    "height",
    "content_type",
    "byte_size",
    "placeholder",
    "created_at",
)


@strawberry.type(description="An image and where it is stored.")
class Image(Node):
    pk: Private[int]
    project_pk: Private[int]
    message_pk: Private[int | None]
    url: str = strawberry.field(description="An absolute, permanent URL of the image.")
    thumbnail_url: str = strawberry.field(
        description="A WebP of at most 512 px on its longest side, for grids."
    )
    width: int
    height: int
    content_type: str
    byte_size: int
    placeholder: bool = strawberry.field(
        description="Made offline because no image model is configured, not by a model."
    )
    created_at: datetime

    @classmethod
    def from_row(cls, row: tables.Image) -> Image:
        (
            pk,
            project_pk,
            message_pk,
            url,
            thumbnail_url,
            width,
            height,
            content_type,
            byte_size,
            placeholder,
            created_at,
        ) = _IMAGE_COLUMNS.of(row)
        assert pk is not None
        return cls(
            id=strawberry.ID(encode_id("Image", pk)),
            pk=pk,
            project_pk=project_pk,
            message_pk=message_pk,
            url=url,
            thumbnail_url=thumbnail_url or url,
            width=width,
            height=height,
            content_type=content_type,
            byte_size=byte_size,
            placeholder=placeholder,
            created_at=created_at,
        )

    @strawberry.field(graphql_type=Annotated["Project", strawberry.lazy(__name__)])
    def project(self, info: Info_) -> Any:
        return IMAGE_PROJECT.resolve(info.context.loaders, self, {})

    @strawberry.field(
        graphql_type=Annotated["Message", strawberry.lazy(__name__)] | None,
        description="The message that generated the image; null for uploads.",
    )
    def message(self, info: Info_) -> Any:
        return IMAGE_MESSAGE.resolve(info.context.loaders, self, {})

    @strawberry.field(
        description="Every place the image appears in: frames, contexts, main chats, galleries."
    )
    async def appears_in(self, info: Info_) -> list[ImagePlace]:
        loaders = info.context.loaders
        places = await loaders.places_of_image.load(self.pk)
        found = [await place_node(loaders, place) for place in places]
        return [node for node in found if node is not None]


async def place_node(loaders: Loaders, place: Place) -> ImagePlace | None:
    found: ImagePlace | None = await loaders.of_type(place.kind.type_name).load(place.id)
    return found


IMAGE_PROJECT = relation(
    "Image", "project", Relation(lambda loaders, image, _: (loaders.project, image.project_pk))
)
IMAGE_MESSAGE = relation(
    "Image",
    "message",
    Relation(
        lambda loaders, image, _: (
            (loaders.message, image.message_pk) if image.message_pk is not None else None
        )
    ),
)


@strawberry.interface(description="A chat: a frame, a video's context or a main chat.")
class Chat(Node):
    place: Private[Place]
    video_pk: Private[int]

    @strawberry.field(
        graphql_type=Connection[Annotated["Message", strawberry.lazy(__name__)]],
        description="The chat's messages, newest first.",
    )
    def messages(
        self,
        info: Info_,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Any:
        return CHAT_MESSAGES.resolve(info.context.loaders, self, {"first": first, "after": after})

    @strawberry.field(
        graphql_type=Connection[Image], description="The images in the chat, newest first."
    )
    def images(
        self,
        info: Info_,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Any:
        return PLACE_IMAGES.resolve(info.context.loaders, self, {"first": first, "after": after})

    @strawberry.field(graphql_type=int)
    def message_count(self, info: Info_) -> Any:
        return CHAT_MESSAGE_COUNT.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=int)
    def image_count(self, info: Info_) -> Any:
        return PLACE_IMAGE_COUNT.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=Annotated["Video", strawberry.lazy(__name__)])
    def video(self, info: Info_) -> Any:
        return CHAT_VIDEO.resolve(info.context.loaders, self, {})


def _chat_relation(field: str, rel: Relation) -> Relation:
    for type_name in ("Frame", "Context", "MainChat"):
        relation(type_name, field, rel)
    return rel


CHAT_MESSAGES = _chat_relation(
    "messages",
    Relation(
        lambda loaders, chat, args: (loaders.messages_of_chat, (chat.place, page_of(args))),
        connection=True,
        count=lambda loaders, chat, _: (loaders.message_count, chat.place),
    ),
)
PLACE_IMAGES = Relation(
    lambda loaders, place, args: (loaders.images_of_place, (place.place, page_of(args))),
    connection=True,
    count=lambda loaders, place, _: (loaders.place_image_count, place.place),
)
_chat_relation("images", PLACE_IMAGES)
CHAT_MESSAGE_COUNT = _chat_relation(
    "messageCount", Relation(lambda loaders, chat, _: (loaders.message_count, chat.place))
)
PLACE_IMAGE_COUNT = _chat_relation(
    "imageCount", Relation(lambda loaders, chat, _: (loaders.place_image_count, chat.place))
)
CHAT_VIDEO = _chat_relation(
    "video", Relation(lambda loaders, chat, _: (loaders.video, chat.video_pk))
)


_FRAME_COLUMNS = _Columns(
    "id", "video_id", "title", "order", "selected_image_id", "created_at", "updated_at"
)


@strawberry.type(description="One still of a video, and the chat in which it is made.")
class Frame(Chat):
    title: str
    order: int = strawberry.field(description="Position in the video: 0..n-1, contiguous.")
    selected_image_pk: Private[int | None]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: tables.Frame) -> Frame:
        pk, video_pk, title, order, selected, created_at, updated_at = _FRAME_COLUMNS.of(row)
        assert pk is not None
        return cls(
            id=strawberry.ID(encode_id("Frame", pk)),
            place=Place(PlaceKind.FRAME, pk),
            video_pk=video_pk,
            title=title,
            order=order,
            selected_image_pk=selected,
            created_at=created_at,
            updated_at=updated_at,
        )

    @strawberry.field(graphql_type=Image | None, description="The image chosen for the video.")
    def selected_image(self, info: Info_) -> Any:
        return FRAME_SELECTED_IMAGE.resolve(info.context.loaders, self, {})


FRAME_SELECTED_IMAGE = relation(
    "Frame",
    "selectedImage",
    Relation(
        lambda loaders, frame, _: (
            (loaders.image, frame.selected_image_pk)
            if frame.selected_image_pk is not None
            else None
        )
    ),
)


@strawberry.type(description="A video's context: text and reference images, itself a chat.")
class Context(Chat):
    content: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: tables.Context) -> Context:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Context", row.id)),
            place=Place(PlaceKind.CONTEXT, row.id),
            video_pk=row.video_id,
            content=row.content,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(description="A free-form generation chat of a video.")
class MainChat(Chat):
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: tables.MainChat) -> MainChat:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("MainChat", row.id)),
            place=Place(PlaceKind.MAIN_CHAT, row.id),
            video_pk=row.video_id,
            name=row.name,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


_MESSAGE_COLUMNS = _Columns(
    "id",
    "prompt",
    "with_context",
    "final_prompt",
    "created_at",
)


@strawberry.type(description="A prompt in a chat, and the images it produced.")
class Message(Node):
    pk: Private[int]
    chat_place: Private[Place]
    prompt: str
    with_context: bool = strawberry.field(
        description="Whether the frame's prompt asked for the video's context. Always false in "
        "the context chat and main chats, whose prompts carry the context regardless."
    )
    final_prompt: str | None = strawberry.field(description="The prompt as actually sent.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: tables.Message) -> Message:
        pk, prompt, with_context, final_prompt, created_at = _MESSAGE_COLUMNS.of(row)
        assert pk is not None
        return cls(
            id=strawberry.ID(encode_id("Message", pk)),
            pk=pk,
            chat_place=chat_of(row),
            prompt=prompt,
            with_context=with_context,
            final_prompt=final_prompt,
            created_at=created_at,
        )

    @strawberry.field(graphql_type=list[Image], description="The images the message produced.")
    def images(self, info: Info_) -> Any:
        return MESSAGE_IMAGES.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=list[Image], description="The reference images it attached.")
    def attached_images(self, info: Info_) -> Any:
        return MESSAGE_ATTACHMENTS.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=Chat, description="The chat the message belongs to.")
    def chat(self, info: Info_) -> Any:
        return MESSAGE_CHAT.resolve(info.context.loaders, self, {})

    @strawberry.field(
        graphql_type=Annotated["Generation", strawberry.lazy(__name__)] | None,
        description="The work done to make the message's images; null for a plain message.",
    )
    def generation(self, info: Info_) -> Any:
        return MESSAGE_GENERATION.resolve(info.context.loaders, self, {})


MESSAGE_IMAGES = relation(
    "Message", "images", Relation(lambda loaders, m, _: (loaders.images_of_message, m.pk))
)
MESSAGE_ATTACHMENTS = relation(
    "Message",
    "attachedImages",
    Relation(lambda loaders, m, _: (loaders.attachments_of_message, m.pk)),
)
MESSAGE_GENERATION = relation(
    "Message",
    "generation",
    Relation(lambda loaders, m, _: (loaders.generation_of_message, m.pk)),
)
MESSAGE_CHAT = relation(
    "Message",
    "chat",
    Relation(lambda loaders, m, _: (loaders.of_type(m.chat_place.kind.type_name), m.chat_place.id)),
)


@strawberry.type(description="A video: an ordered list of frames, a context and main chats.")
class Video(Node):
    pk: Private[int]
    project_pk: Private[int]
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: tables.Video) -> Video:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Video", row.id)),
            pk=row.id,
            project_pk=row.project_id,
            name=row.name,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(graphql_type=Annotated["Project", strawberry.lazy(__name__)])
    def project(self, info: Info_) -> Any:
        return VIDEO_PROJECT.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=Context)
    def context(self, info: Info_) -> Any:
        return VIDEO_CONTEXT.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=list[Frame], description="The frames, by `order`.")
    def frames(self, info: Info_) -> Any:
        return VIDEO_FRAMES.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=list[MainChat], description="The main chats, oldest first.")
    def main_chats(self, info: Info_) -> Any:
        return VIDEO_MAIN_CHATS.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=int)
    def frame_count(self, info: Info_) -> Any:
        return VIDEO_FRAME_COUNT.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=int, description="Images made in or uploaded to the video.")
    def image_count(self, info: Info_) -> Any:
        return VIDEO_IMAGE_COUNT.resolve(info.context.loaders, self, {})


VIDEO_PROJECT = relation(
    "Video", "project", Relation(lambda loaders, v, _: (loaders.project, v.project_pk))
)
VIDEO_CONTEXT = relation(
    "Video", "context", Relation(lambda loaders, v, _: (loaders.context_of_video, v.pk))
)
VIDEO_FRAMES = relation(
    "Video", "frames", Relation(lambda loaders, v, _: (loaders.frames_of_video, v.pk))
)
VIDEO_MAIN_CHATS = relation(
    "Video", "mainChats", Relation(lambda loaders, v, _: (loaders.main_chats_of_video, v.pk))
)
VIDEO_FRAME_COUNT = relation(
    "Video", "frameCount", Relation(lambda loaders, v, _: (loaders.frame_count, v.pk))
)
VIDEO_IMAGE_COUNT = relation(
    "Video",
    "imageCount",
    Relation(lambda loaders, v, _: (loaders.project_image_count, (v.project_pk, v.pk))),
)


@strawberry.type(description="A project: videos, and a gallery of images.")
class Project(Node):
    pk: Private[int]
    place: Private[Place]
    name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: tables.Project) -> Project:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Project", row.id)),
            pk=row.id,
            place=Place(PlaceKind.GALLERY, row.id),
            name=row.name,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(graphql_type=Connection[Video], description="The videos, newest first.")
    def videos(
        self,
        info: Info_,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Any:
        return PROJECT_VIDEOS.resolve(info.context.loaders, self, {"first": first, "after": after})

    @strawberry.field(
        graphql_type=Connection[Image],
        description="Images kept in the project's gallery, newest first.",
    )
    def gallery(
        self,
        info: Info_,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Any:
        return PLACE_IMAGES.resolve(info.context.loaders, self, {"first": first, "after": after})

    @strawberry.field(
        graphql_type=Connection[Image],
        description="Every image of the project, newest first; with `videoId`, those made in "
        "or uploaded to that video.",
    )
    def images(
        self,
        info: Info_,
        video_id: strawberry.ID | None = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Any:
        args = {"videoId": video_id, "first": first, "after": after}
        return PROJECT_IMAGES.resolve(info.context.loaders, self, args)

    @strawberry.field(graphql_type=int)
    def video_count(self, info: Info_) -> Any:
        return PROJECT_VIDEO_COUNT.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=int, description="Every image of the project.")
    def image_count(self, info: Info_) -> Any:
        return PROJECT_IMAGE_COUNT.resolve(info.context.loaders, self, {})

    @strawberry.field(graphql_type=int, description="Images in the project's gallery.")
    def gallery_count(self, info: Info_) -> Any:
        return PLACE_IMAGE_COUNT.resolve(info.context.loaders, self, {})


def _project_images_key(project: Project, args: Args) -> tuple[int, int | None]:
    video_id = args.get("videoId")
    return project.pk, decode_pk(video_id, "Video", "videoId") if video_id is not None else None


PROJECT_VIDEOS = relation(
    "Project",
    "videos",
    Relation(
        lambda loaders, p, args: (loaders.videos_of_project, (p.pk, page_of(args))),
        connection=True,
        count=lambda loaders, p, _: (loaders.video_count, p.pk),
    ),
)
relation("Project", "gallery", PLACE_IMAGES)
PROJECT_IMAGES = relation(
    "Project",
    "images",
    Relation(
        lambda loaders, p, args: (
            loaders.images_of_project,
            (_project_images_key(p, args), page_of(args)),
        ),
        connection=True,
        count=lambda loaders, p, args: (loaders.project_image_count, _project_images_key(p, args)),
    ),
)
PROJECT_VIDEO_COUNT = relation(
    "Project", "videoCount", Relation(lambda loaders, p, _: (loaders.video_count, p.pk))
)
PROJECT_IMAGE_COUNT = relation(
    "Project",
    "imageCount",
    Relation(lambda loaders, p, _: (loaders.project_image_count, (p.pk, None))),
)
relation("Project", "galleryCount", PLACE_IMAGE_COUNT)

NODE_TYPES: dict[str, type[Node]] = {
    cls.__name__: cls for cls in (Project, Video, Context, Frame, MainChat, Message, Image)
}

ImagePlace = Annotated[
    Frame | Context | MainChat | Project,
    strawberry.union(
        "ImagePlace", description="A place an image appears in; a project means its gallery."
    ),
]


GenerationStatus = strawberry.enum(
    generation.GenerationStatus,
    name="GenerationStatus",
    description="Where a generation stands. QUEUED and RUNNING are not final; the rest are.",
)


@strawberry.type(description="Tokens a generation used, as the provider reported them.")
class TokenUsage:
    input_text_tokens: int
    input_image_tokens: int
    output_tokens: int

    @strawberry.field
    def input_tokens(self) -> int:
        return self.input_text_tokens + self.input_image_tokens

    @strawberry.field
    def total_tokens(self) -> int:
        return self.input_text_tokens + self.input_image_tokens + self.output_tokens


@strawberry.type(description="Why an image of a generation, or a step of it, failed.")
class GenerationError:
    index: int | None = strawberry.field(
        description="The position (from 0) of the image that failed; null for a step that "
        "concerns them all, such as describing the reference images."
    )
    code: ErrorCode  # type: ignore[valid-type]
    message: str

    @classmethod
    def of(cls, failure: generation.ImageFailure) -> GenerationError:
        return cls(index=failure.index, code=failure.code, message=failure.message)


_GENERATION_COLUMNS = _Columns(
    "id",
    "message_id",
    "status",
    "provider",
    "model",
    "vision_model",
    "size",
    "quality",
    "requested_count",
    "completed_count",
    "errors",
    "input_text_tokens",
    "input_image_tokens",
    "output_tokens",
    "estimated_cost_usd",
    "created_at",
    "started_at",
    "finished_at",
)


@strawberry.type(
    description="The work done for a message: the model, how many images it made, what it "
    "cost and how it went. Kept apart from the message, whose prompt stays even when this fails."
)
class Generation(Node):
    pk: Private[int]
    message_pk: Private[int]
    status: GenerationStatus  # type: ignore[valid-type]
    provider: str = strawberry.field(description="`openai`, or `placeholder` without a key.")
    model: str = strawberry.field(description="The image model.")
    vision_model: str | None = strawberry.field(
        description="The model that described the reference images; null without references."
    )
    size: str
    quality: str
    requested_count: int
    completed_count: int
    errors: list[GenerationError]
    usage: TokenUsage | None = strawberry.field(
        description="Null when the provider reports none (placeholders, some compatible APIs)."
    )
    estimated_cost_usd: float | None = strawberry.field(
        description="An estimate in US dollars from the usage and list prices; null when the "
        "model's prices are unknown."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @strawberry.field
    def failed_count(self) -> int:
        if self.status in (generation.GenerationStatus.QUEUED, generation.GenerationStatus.RUNNING):
            return 0
        return self.requested_count - self.completed_count

    @strawberry.field
    def placeholder(self) -> bool:
        return self.provider == PLACEHOLDER_MODEL

    @strawberry.field(description="From start to end, in milliseconds; null until both.")
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds() * 1000)

    @strawberry.field(graphql_type=Message)
    async def message(self, info: Info_) -> Any:
        return await info.context.loaders.message.load(self.message_pk)

    @classmethod
    def from_row(cls, row: tables.Generation) -> Generation:
        (
            pk,
            message_pk,
            status,
            provider,
            model,
            vision_model,
            size,
            quality,
            requested,
            completed,
            errors,
            input_text,
            input_image,
            output,
            cost,
            created_at,
            started_at,
            finished_at,
        ) = _GENERATION_COLUMNS.of(row)
        assert pk is not None
        usage = None
        if output is not None:
            usage = TokenUsage(
                input_text_tokens=input_text or 0,
                input_image_tokens=input_image or 0,
                output_tokens=output,
            )
        return cls(
            id=strawberry.ID(encode_id("Generation", pk)),
            pk=pk,
            message_pk=message_pk,
            status=generation.GenerationStatus(status),
            provider=provider,
            model=model,
            vision_model=vision_model,
            size=size,
            quality=quality,
            requested_count=requested,
            completed_count=completed,
            errors=[GenerationError.of(generation.ImageFailure.of_json(e)) for e in errors],
            usage=usage,
            estimated_cost_usd=cost,
            created_at=created_at,
            started_at=started_at,
            finished_at=finished_at,
        )
