"""Seeding and inspection helpers shared by the integration tests.

What the API can create is created through GraphQL; messages and images, whose uploads and
generation come later, are recorded through the service layer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storyframe.domain.places import Place, PlaceKind
from storyframe.schema.ids import encode_id, parse_id
from storyframe.services.container import Services
from storyframe.services.image_places import StoredImage
from tests.conftest import GraphQLClient

CREATE_PROJECT = """
mutation CreateProject($name: String!) {
  createProject(input: {name: $name}) {
    project { id }
    userErrors { field message code }
  }
}
"""

CREATE_VIDEO = """
mutation CreateVideo($projectId: ID!, $name: String!) {
  createVideo(input: {projectId: $projectId, name: $name}) {
    video { id context { id } mainChats { id } }
    userErrors { field message code }
  }
}
"""

CREATE_FRAME = """
mutation CreateFrame($videoId: ID!, $title: String!, $order: Int) {
  createFrame(input: {videoId: $videoId, title: $title, order: $order}) {
    frame { id }
    userErrors { field message code }
  }
}
"""

CREATE_MAIN_CHAT = """
mutation CreateMainChat($videoId: ID!, $name: String!) {
  createMainChat(input: {videoId: $videoId, name: $name}) {
    mainChat { id }
    userErrors { field message code }
  }
}
"""

SELECT_FRAME_IMAGE = """
mutation Select($frameId: ID!, $imageId: ID) {
  selectFrameImage(input: {frameId: $frameId, imageId: $imageId}) {
    frame { id selectedImage { id } }
    userErrors { field message code }
  }
}
"""

COPY_IMAGE = """
mutation Copy($imageId: ID!, $targetId: ID!) {
  copyImage(input: {imageId: $imageId, targetId: $targetId}) {
    image { id }
    userErrors { field message code }
  }
}
"""

FRAMES_OF_VIDEO = """
query Frames($id: ID!) {
  video(id: $id) { frames { id title order } }
}
"""

# Everything a refused mutation could have touched, to prove it touched nothing.
STATE = """
query State {
  projects(first: 100) {
    totalCount
    nodes {
      id name updatedAt videoCount imageCount galleryCount
      gallery(first: 100) { nodes { id } }
      images(first: 100) {
        nodes {
          id url project { id } message { id }
          appearsIn { __typename ... on Node { id } }
        }
      }
      videos(first: 100) {
        nodes {
          id name updatedAt frameCount imageCount
          context {
            id content updatedAt messageCount
            messages(first: 100) { nodes { id } }
            images(first: 100) { nodes { id } }
          }
          mainChats {
            id name updatedAt messageCount
            messages(first: 100) { nodes { id } }
            images(first: 100) { nodes { id } }
          }
          frames {
            id title order updatedAt messageCount selectedImage { id }
            messages(first: 100) { nodes { id } }
            images(first: 100) { nodes { id } }
          }
        }
      }
    }
  }
}
"""

_KINDS = {
    "Frame": PlaceKind.FRAME,
    "Context": PlaceKind.CONTEXT,
    "MainChat": PlaceKind.MAIN_CHAT,
    "Project": PlaceKind.GALLERY,
}
_serial = itertools.count(1)


@dataclass(frozen=True, slots=True)
class SeededVideo:
    id: str
    project_id: str
    context_id: str
    main_chat_id: str


def pk_of(global_id: str) -> int:
    parsed = parse_id(global_id)
    assert parsed is not None, global_id
    return parsed[1]


def place_of(global_id: str) -> Place:
    """The place (frame, context, main chat or gallery) a global ID names."""
    parsed = parse_id(global_id)
    assert parsed is not None, global_id
    return Place(_KINDS[parsed[0]], parsed[1])


def unknown_id(type_name: str) -> str:
    """A well-formed ID of a row that does not exist."""
    return encode_id(type_name, 987_654)


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


def stored_image(label: str | None = None) -> StoredImage:
    """A stored file with a URL of its own."""
    name = label or f"image-{next(_serial)}"
    return StoredImage(
        url=f"https://media.storyframe.test/{name}.png",
        storage_key=f"images/{name}.png",
        width=640,
        height=360,
        content_type="image/png",
        byte_size=2048,
    )


async def add_image(
    services: Services, place_id: str, *, message_id: str | None = None, label: str | None = None
) -> str:
    """An image appearing in the place (uploaded, or produced by `message_id`)."""
    image = await services.images.add(
        place_of(place_id),
        stored_image(label),
        message_id=pk_of(message_id) if message_id is not None else None,
    )
    assert image.id is not None
    return encode_id("Image", image.id)


async def post_message(
    services: Services,
    chat_id: str,
    prompt: str = "a prompt",
    *,
    with_context: bool = False,
    attached_image_ids: Sequence[str] = (),
) -> str:
    message = await services.chats.post_message(
        place_of(chat_id),
        prompt,
        with_context=with_context,
        attached_image_ids=[pk_of(i) for i in attached_image_ids],
    )
    assert message.id is not None
    return encode_id("Message", message.id)


async def generate(
    services: Services, chat_id: str, prompt: str = "a prompt", images: int = 1
) -> tuple[str, list[str]]:
    """A message in the chat and the images it produced, which appear in that chat."""
    message_id = await post_message(services, chat_id, prompt)
    produced = [await add_image(services, chat_id, message_id=message_id) for _ in range(images)]
    return message_id, produced


async def state(gql: GraphQLClient) -> dict[str, Any]:
    """Everything stored, as the API shows it."""
    return await gql.data(STATE)


def ids(nodes: Sequence[dict[str, Any]]) -> list[str]:
    return [node["id"] for node in nodes]


def places(image: dict[str, Any]) -> set[tuple[str, str]]:
    """(typename, id) of every place in an image's `appearsIn`."""
    return {(place["__typename"], place["id"]) for place in image["appearsIn"]}


async def waiting_for_locks(engine: AsyncEngine) -> int:
    """How many PostgreSQL backends of the engine's database wait for a lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    async with engine.connect() as connection:
        return int(await connection.scalar(waiting) or 0)


async def until_waiting_for_locks(engine: AsyncEngine, count: int, seconds: float = 10) -> None:
    """Wait until `count` PostgreSQL backends of the engine's database wait for a lock."""
    async with asyncio.timeout(seconds):
        while await waiting_for_locks(engine) < count:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.01)
