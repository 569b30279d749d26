"""Projects and their videos."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import Private

from storyframe.db import tables
from storyframe.domain.places import Place, PlaceKind
from storyframe.schema.chats import Context, Frame, MainChat
from storyframe.schema.connection import Connection
from storyframe.schema.ids import decode_pk
from storyframe.schema.images import Image, image_count_of_place, images_of_place
from storyframe.schema.nodes import AFTER, FIRST, Node, page, page_of, paged, related
from storyframe.schema.relations import Args, Target
from storyframe.schema.request_context import Loaders


@strawberry.type(description="A video: an ordered list of frames, a context and main chats.")
class Video(Node):
    project_pk: Private[int]
    name: str
    created_at: datetime
    updated_at: datetime
    project: Project = related(lambda loaders, v, _: (loaders.project, v.project_pk))
    context: Context = related(lambda loaders, v, _: (loaders.context_of_video, v.pk))
    frames: list[Frame] = related(
        lambda loaders, v, _: (loaders.frames_of_video, v.pk), description="The frames, by `order`."
    )
    main_chats: list[MainChat] = related(
        lambda loaders, v, _: (loaders.main_chats_of_video, v.pk),
        description="The main chats, oldest first.",
    )
    frame_count: int = related(lambda loaders, v, _: (loaders.frame_count, v.pk))
    image_count: int = related(
        lambda loaders, v, _: (loaders.project_image_count, (v.project_pk, v.pk)),
        description="Images made in or uploaded to the video.",
    )

    @classmethod
    def from_row(cls, row: tables.Video) -> Video:
        return cls(**_named(row), project_pk=row.project_id)


def _video_count(loaders: Loaders, project: Project, _: Args) -> Target:
    return loaders.video_count, project.pk


def _video_and_page(
    video_id: strawberry.ID | None = None,
    first: Annotated[int | None, FIRST] = None,
    after: Annotated[str | None, AFTER] = None,
) -> Args:
    """The arguments of `Project.images`: a page, of one video's images when it names one."""
    return {"videoId": video_id, **page(first, after)}


def _project_images_key(project: Project, args: Args) -> tuple[int, int | None]:
    video_id = args.get("videoId")
    return project.pk, decode_pk(video_id, "Video", "videoId") if video_id is not None else None


@strawberry.type(description="A project: videos, and a gallery of images.")
class Project(Node):
    place: Private[Place]
    name: str
    created_at: datetime
    updated_at: datetime
    videos: Connection[Video] = paged(
        lambda loaders, p, args: (loaders.videos_of_project, (p.pk, page_of(args))),
        _video_count,
        description="The videos, newest first.",
    )
    gallery: Connection[Image] = paged(
        images_of_place,
        image_count_of_place,
        description="Images kept in the project's gallery, newest first.",
    )
    images: Connection[Image] = paged(
        lambda loaders, p, args: (
            loaders.images_of_project,
            (_project_images_key(p, args), page_of(args)),
        ),
        lambda loaders, p, args: (loaders.project_image_count, _project_images_key(p, args)),
        description="Every image of the project, newest first; with `videoId`, those made in "
        "or uploaded to that video.",
        arguments=_video_and_page,
    )
    video_count: int = related(_video_count)
    image_count: int = related(
        lambda loaders, p, _: (loaders.project_image_count, (p.pk, None)),
        description="Every image of the project.",
    )
    gallery_count: int = related(
        image_count_of_place, description="Images in the project's gallery."
    )

    @classmethod
    def from_row(cls, row: tables.Project) -> Project:
        fields = _named(row)
        return cls(**fields, place=Place(PlaceKind.GALLERY, fields["pk"]))


def _named(row: tables.Project | tables.Video) -> dict[str, Any]:
    """What a project and a video take from their rows alike."""
    assert row.id is not None
    return {
        "pk": row.id,
        "name": row.name,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
