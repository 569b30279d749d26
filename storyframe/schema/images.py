"""Images, and what every place an image appears in (a chat, a project's gallery) shares."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import Private

from storyframe.db import tables
from storyframe.domain.places import Place
from storyframe.schema.building import built
from storyframe.schema.nodes import Columns, Node, page_of, related
from storyframe.schema.relations import Args, Target
from storyframe.schema.request_context import Info_, Loaders

if TYPE_CHECKING:
    from storyframe.schema.chats import Message
    from storyframe.schema.places import ImagePlace
    from storyframe.schema.projects import Project

_IMAGE_COLUMNS = Columns(
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
    project: Annotated[Project, strawberry.lazy("storyframe.schema.projects")] = related(
        lambda loaders, image, _: (loaders.project, image.project_pk)
    )
    message: Annotated[Message, strawberry.lazy("storyframe.schema.chats")] | None = related(
        lambda loaders, image, _: (
            (loaders.message, image.message_pk) if image.message_pk is not None else None
        ),
        description="The message that generated the image; null for uploads.",
    )

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
        return built(
            cls,
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

    @strawberry.field(
        description="Every place the image appears in: frames, contexts, main chats, galleries."
    )
    async def appears_in(
        self, info: Info_
    ) -> list[Annotated[ImagePlace, strawberry.lazy("storyframe.schema.places")]]:
        loaders = info.context.loaders
        places = await loaders.places_of_image.load(self.pk)
        found = [await place_node(loaders, place) for place in places]
        return [node for node in found if node is not None]


async def place_node(loaders: Loaders, place: Place) -> ImagePlace | None:
    found: ImagePlace | None = await loaders.of_type(place.kind.type_name).load(place.id)
    return found


def images_of_place(loaders: Loaders, owner: Any, args: Args) -> Target:
    """A page of the images in a place: a chat, or a project's gallery (`owner.place`)."""
    return loaders.images_of_place, (owner.place, page_of(args))


def image_count_of_place(loaders: Loaders, owner: Any, _: Args) -> Target:
    return loaders.place_image_count, owner.place
