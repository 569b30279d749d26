"""Scenes the integration tests start from, built through the API where it can create them.

Projects, videos, frames and main chats are created with GraphQL; messages and images, which
generation and uploads make, are recorded through `tests.support.seeds`. `a_full_project` is a
project with one object of every kind, built through the services, for the access and limit
tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from storyframe.domain.places import Place, PlaceKind
from storyframe.schema.ids import encode_id
from storyframe.services.container import Services
from tests.support.clients import GraphQLClient
from tests.support.documents import (
    COPY_IMAGE,
    CREATE_FRAME,
    CREATE_MAIN_CHAT,
    CREATE_PROJECT,
    CREATE_VIDEO,
    FRAMES_OF_VIDEO,
    SELECT_FRAME_IMAGE,
    STATE,
)
from tests.support.ids import known, unknown_id
from tests.support.images import stored_image
from tests.support.seeds import Seeds


@dataclass(frozen=True, slots=True)
class SeededVideo:
    id: str
    project_id: str
    context_id: str
    main_chat_id: str


async def create_project(gql: GraphQLClient, name: str = "Project") -> str:
    payload = await gql.mutate(CREATE_PROJECT, {"name": name})
    project_id: str = payload["project"]["id"]
    return project_id


async def create_video(gql: GraphQLClient, project_id: str, name: str = "Video") -> SeededVideo:
    payload = await gql.mutate(CREATE_VIDEO, {"projectId": project_id, "name": name})
    video = payload["video"]
    return SeededVideo(
        id=video["id"],
        project_id=project_id,
        context_id=video["context"]["id"],
        main_chat_id=video["mainChats"][0]["id"],
    )


async def seed_video(gql: GraphQLClient, name: str = "Video") -> SeededVideo:
    """A video in a project of its own."""
    return await create_video(gql, await create_project(gql, f"{name} project"), name)


async def create_frame(
    gql: GraphQLClient, video_id: str, title: str = "", order: int | None = None
) -> str:
    payload = await gql.mutate(CREATE_FRAME, {"videoId": video_id, "title": title, "order": order})
    frame_id: str = payload["frame"]["id"]
    return frame_id


async def seed_frame(gql: GraphQLClient, title: str = "") -> tuple[SeededVideo, str]:
    """A frame of a video in a project of its own: the video, and the frame's ID."""
    video = await seed_video(gql)
    return video, await create_frame(gql, video.id, title)


async def create_frames(gql: GraphQLClient, video_id: str, titles: Sequence[str]) -> list[str]:
    return [await create_frame(gql, video_id, title) for title in titles]


async def create_main_chat(gql: GraphQLClient, video_id: str, name: str) -> str:
    payload = await gql.mutate(CREATE_MAIN_CHAT, {"videoId": video_id, "name": name})
    chat_id: str = payload["mainChat"]["id"]
    return chat_id


async def frame_orders(gql: GraphQLClient, video_id: str) -> list[tuple[str, int]]:
    """(title, order) of the video's frames, as the API lists them."""
    data = await gql.data(FRAMES_OF_VIDEO, {"id": video_id})
    return [(frame["title"], frame["order"]) for frame in data["video"]["frames"]]


async def select_image(gql: GraphQLClient, frame_id: str, image_id: str | None) -> None:
    await gql.mutate(SELECT_FRAME_IMAGE, {"frameId": frame_id, "imageId": image_id})


async def copy_image(gql: GraphQLClient, image_id: str, target_id: str) -> str:
    payload = await gql.mutate(COPY_IMAGE, {"imageId": image_id, "targetId": target_id})
    copied: str = payload["image"]["id"]
    return copied


async def state(gql: GraphQLClient) -> dict[str, Any]:
    """Everything stored, as the API shows it."""
    return await gql.data(STATE)


async def refused(
    gql: GraphQLClient, document: str, variables: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The payload and the one user error of a single-mutation document that must be refused,
    having changed nothing the API shows (`state`)."""
    before = await state(gql)
    data = await gql.data(document, variables)
    (payload,) = data.values()
    (error,) = payload["userErrors"]
    assert await state(gql) == before
    return payload, error


def ids(nodes: Sequence[dict[str, Any]]) -> list[str]:
    return [node["id"] for node in nodes]


def places(image: dict[str, Any]) -> set[tuple[str, str]]:
    """(typename, id) of every place in an image's `appearsIn`."""
    return {(place["__typename"], place["id"]) for place in image["appearsIn"]}


# --- a project with one object of every kind --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ids:
    """Global IDs of one object of each kind in a project."""

    project: str
    video: str
    context: str
    frame: str
    main_chat: str
    message: str
    image: str

    @classmethod
    def missing(cls) -> Ids:
        """IDs of the right types that name nothing."""
        return cls(
            project=unknown_id("Project"),
            video=unknown_id("Video"),
            context=unknown_id("Context"),
            frame=unknown_id("Frame"),
            main_chat=unknown_id("MainChat"),
            message=unknown_id("Message"),
            image=unknown_id("Image"),
        )

    def variables(self) -> dict[str, str]:
        """The IDs as variables `$project`, `$video`, `$context`, `$frame`, `$mainChat`…"""
        names = {"main_chat": "mainChat"}
        return {names.get(f.name, f.name): getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Their:
    """In a call's variables: the ID of this kind (an `Ids` field) among the IDs tried."""

    kind: str


@dataclass(frozen=True, slots=True)
class My:
    """In a call's variables: the caller's own ID of this kind."""

    kind: str


def with_ids(value: Any, tried: Ids, mine: Ids | None = None) -> Any:
    """`value` (variables, a list, or one value) with every `Their(kind)` and `My(kind)` in it
    replaced by that ID."""
    if isinstance(value, dict):
        return {key: with_ids(item, tried, mine) for key, item in value.items()}
    if isinstance(value, list):
        return [with_ids(item, tried, mine) for item in value]
    if isinstance(value, Their):
        return getattr(tried, value.kind)
    if isinstance(value, My):
        assert mine is not None, value
        return getattr(mine, value.kind)
    return value


async def a_full_project(services: Services, seeds: Seeds, name: str) -> Ids:
    """A project with a video, its context and main chat, two frames, messages in each chat,
    the images they made, a gallery upload and a selected frame image."""
    project = known((await services.projects.create(name)).id)
    video = known((await services.videos.create(project, "Opening")).id)
    context = known((await services.reads.contexts_of_videos([video]))[video].id)
    (chat_row,) = (await services.reads.main_chats_of_videos([video]))[video]
    chat = known(chat_row.id)
    await services.contexts.update(context, "Watercolour, late summer light")
    frame = known((await services.frames.create(video, "Dawn")).id)
    dusk = known((await services.frames.create(video, "Dusk")).id)
    frame_place = Place(PlaceKind.FRAME, frame)
    gallery = Place(PlaceKind.GALLERY, project)

    message = known((await seeds.post_message(frame_place, "a red sky")).id)
    image = known(
        (await seeds.add_image(frame_place, stored_image(f"{name}-dawn.png"), message)).id
    )
    await services.frames.select_image(frame, image)
    await services.images.copy(image, gallery)
    await seeds.post_message(
        Place(PlaceKind.FRAME, dusk), "the same sky, later", attached_image_ids=[image]
    )
    for place, prompt in (
        (Place(PlaceKind.CONTEXT, context), "the house by the lake"),
        (Place(PlaceKind.MAIN_CHAT, chat), "try a storm"),
    ):
        made = known((await seeds.post_message(place, prompt)).id)
        await seeds.add_image(place, stored_image(f"{name}-{place.kind.key}.png"), made)
    await seeds.add_image(gallery, stored_image(f"{name}-upload.png"))
    return Ids(
        project=encode_id("Project", project),
        video=encode_id("Video", video),
        context=encode_id("Context", context),
        frame=encode_id("Frame", frame),
        main_chat=encode_id("MainChat", chat),
        message=encode_id("Message", message),
        image=encode_id("Image", image),
    )
