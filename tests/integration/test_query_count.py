"""N+1 is a bug: the SQL statements a query runs do not grow with the rows it returns."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from storyframe.api_schema import build_schema
from storyframe.domain.pages import PageRequest
from storyframe.domain.places import Place, PlaceKind
from storyframe.schema.ids import encode_id
from storyframe.services.accounts import Session as AccountSession
from storyframe.services.container import Services
from storyframe.services.generation import GenerationRequest
from storyframe.settings import Settings
from tests.support.apps import app_with
from tests.support.clients import GraphQLClient, client_of
from tests.support.images import stored_image
from tests.support.seeds import Seeds, a_storyboard
from tests.support.sql import StatementCounter, counting

STORYBOARD = """
query Storyboard($id: ID!) {
  video(id: $id) {
    frames {
      selectedImage { url }
      messages(first: 3) {
        edges { node { images { url } attachedImages { url } } }
      }
    }
  }
}
"""

PROJECTS = """
query {
  projects {
    nodes { videos { nodes { frames { title } frameCount } } }
  }
}
"""

MESSAGES_PER_FRAME = 4
IMAGES_PER_MESSAGE = 2


async def _seed_video(services: Services, seeds: Seeds, frames: int) -> int:
    """A video whose every frame has an uploaded reference image, messages attaching it, the
    images they produced, and one of them selected."""
    return await a_storyboard(
        services,
        seeds,
        frames,
        messages=MESSAGES_PER_FRAME,
        images=IMAGES_PER_MESSAGE,
        stored=lambda: stored_image(width=64, height=64, byte_size=100),
    )


async def _seed_projects(services: Services, projects: int) -> None:
    for index in range(projects):
        project = await services.projects.create(f"Project {index}")
        assert project.id is not None
        for v in range(2):
            video = await services.videos.create(project.id, f"Video {v}")
            assert video.id is not None
            for f in range(3):
                await services.frames.create(video.id, f"Frame {f}")


async def _storyboard_statements(
    gql: GraphQLClient, sql_counter: StatementCounter, video_pk: int, frames: int
) -> int:
    variables = {"id": encode_id("Video", video_pk)}
    with sql_counter:
        data = await gql.data(STORYBOARD, variables)
    found = data["video"]["frames"]
    assert len(found) == frames
    for frame in found:
        assert frame["selectedImage"]["url"].startswith("https://media.test/")
        edges = frame["messages"]["edges"]
        assert len(edges) == 3
        for edge in edges:
            assert len(edge["node"]["images"]) == IMAGES_PER_MESSAGE
            assert len(edge["node"]["attachedImages"]) == 1
    return len(sql_counter.statements)


async def test_the_storyboard_query_runs_as_many_statements_for_50_frames_as_for_2(
    gql: GraphQLClient, services: Services, seeds: Seeds, sql_counter: StatementCounter
) -> None:
    small = await _seed_video(services, seeds, 2)
    large = await _seed_video(services, seeds, 50)

    few = await _storyboard_statements(gql, sql_counter, small, 2)
    many = await _storyboard_statements(gql, sql_counter, large, 50)

    print(f"storyboard: {few} statements for 2 frames, {many} for 50")
    # the bearer token; video, frames, messages, their images, their attachments, the selected
    # images
    assert few == many == 7, sql_counter.statements


async def test_the_projects_query_runs_as_many_statements_for_20_projects_as_for_2(
    gql: GraphQLClient, services: Services, sql_counter: StatementCounter
) -> None:
    await _seed_projects(services, 2)
    with sql_counter:
        small = await gql.data(PROJECTS)
    few = len(sql_counter.statements)

    await _seed_projects(services, 18)
    with sql_counter:
        large = await gql.data(PROJECTS)
    many = len(sql_counter.statements)

    print(f"projects: {few} statements for 2 projects, {many} for 20")
    assert len(small["projects"]["nodes"]) == 2
    assert len(large["projects"]["nodes"]) == 20
    for project in large["projects"]["nodes"]:
        for video in project["videos"]["nodes"]:
            assert video["frameCount"] == 3
            assert [f["title"] for f in video["frames"]] == ["Frame 0", "Frame 1", "Frame 2"]
    # projects, their videos, the videos' frames, the frame counts
    assert few == many == 5, sql_counter.statements  # the bearer token, then 4


# Every relation field, with and without arguments, paged and not, through lists and `node`.
EVERYTHING = """
query Everything($video: ID!, $message: ID!, $after: String) {
  projects(first: 5) {
    totalCount
    nodes {
      id videoCount imageCount galleryCount
      gallery(first: 2) { totalCount nodes { id } }
      images(first: 3) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { cursor node { id project { id } message { id chat { id } } } }
      }
      ofVideo: images(videoId: $video, first: 2) { totalCount nodes { id } }
      videos(first: 2) {
        totalCount
        nodes {
          id frameCount imageCount project { id }
          context {
            id messageCount imageCount video { id }
            messages(first: 1) { nodes { id } }
            images(first: 1) { nodes { id } }
          }
          mainChats {
            id messageCount imageCount video { id }
            messages { totalCount nodes { id } }
            images { nodes { id } }
          }
          frames {
            id messageCount imageCount selectedImage { id url } video { id }
            messages(first: 2) {
              totalCount
              pageInfo { hasNextPage endCursor }
              edges { node { id images { id } attachedImages { id } chat { id } } }
            }
            later: messages(first: 2, after: $after) { nodes { id } }
            images(first: 2) { totalCount nodes { id } }
          }
        }
      }
    }
  }
  node(id: $message) { ... on Message { chat { id } images { id } attachedImages { url } } }
  frame: node(id: $message) { ... on Message { chat { ... on Frame { messages(first: 101) {
    totalCount } } } } }
}
"""


@dataclass
class Wrapped:
    """A second app on the same database whose relation fields go through Strawberry's own
    resolver wrappers, as they would without `resolve_relations_directly`."""

    gql: GraphQLClient
    sql_counter: StatementCounter


@pytest.fixture
async def wrapped(settings: Settings, owner: AccountSession) -> AsyncIterator[Wrapped]:
    schema = build_schema(settings, direct_relations=False)
    async with app_with(settings, schema=schema) as app, client_of(app, owner.token) as gql:
        yield Wrapped(gql, counting(*app.state.runtime.engines))


async def test_relations_resolved_directly_answer_as_strawberry_would(
    gql: GraphQLClient,
    wrapped: Wrapped,
    services: Services,
    seeds: Seeds,
    sql_counter: StatementCounter,
) -> None:
    video_pk = await _seed_video(services, seeds, 3)
    await _seed_projects(services, 2)
    frame_pk, message_pk = await _first_frame_and_message(services, video_pk)
    cursor = await gql.data(
        "query($id: ID!) { frame(id: $id) { messages(first: 1) { pageInfo { endCursor } } } }",
        {"id": encode_id("Frame", frame_pk)},
    )
    variables = {
        "video": encode_id("Video", video_pk),
        "message": encode_id("Message", message_pk),
        "after": cursor["frame"]["messages"]["pageInfo"]["endCursor"],
    }

    with wrapped.sql_counter:
        expected = await wrapped.gql.execute(EVERYTHING, variables)
    with sql_counter:
        answered = await gql.execute(EVERYTHING, variables)

    assert answered == expected
    # The same reads. (Not always as many: a loader's batch splits in two when the fields that
    # call it become ready in different turns of the event loop, which turns on how fast each
    # earlier read came back, in either app.)
    assert _shapes(sql_counter.statements) == _shapes(wrapped.sql_counter.statements)
    assert [e["path"] for e in expected["errors"]] == [["frame", "chat", "messages"]]
    assert len(expected["data"]["projects"]["nodes"]) == 3
    storyboard = {"id": encode_id("Video", video_pk)}
    assert await gql.data(STORYBOARD, storyboard) == await wrapped.gql.data(STORYBOARD, storyboard)


_PARAMETER = r"(?:\?|\$\d+(?:::[A-Z]+)?)"  # SQLite's ? or asyncpg's $1::INTEGER
_PARAMETER_LIST = re.compile(rf"\((?:\s*{_PARAMETER}\s*,)*\s*{_PARAMETER}\s*\)")


def _shapes(statements: list[str]) -> set[str]:
    """The statements with their lists of parameters folded, so batches of any size compare."""
    return {_PARAMETER_LIST.sub("(…)", statement) for statement in statements}


async def _first_frame_and_message(services: Services, video_pk: int) -> tuple[int, int]:
    frame = (await services.reads.frames_of_videos([video_pk]))[video_pk][0]
    assert frame.id is not None
    chat = Place(PlaceKind.FRAME, frame.id)
    message = (await services.reads.messages_of_chats([chat], PageRequest(1)))[chat][0]
    assert message.id is not None
    return frame.id, message.id


GENERATIONS = """
query Generations($id: ID!) {
  video(id: $id) {
    frames { messages(first: 3) { nodes { prompt generation { status requestedCount } } } }
  }
}
"""


async def _seed_generations(services: Services, frames: int) -> int:
    """A video whose every frame has three prompts with their (queued) generations."""
    project = await services.projects.create("Generations")
    assert project.id is not None
    video = await services.videos.create(project.id, "Video")
    assert video.id is not None
    for index in range(frames):
        frame = await services.frames.create(video.id, f"Frame {index}")
        assert frame.id is not None
        for turn in range(3):
            await services.generation.prepare(
                GenerationRequest(Place(PlaceKind.FRAME, frame.id), f"prompt {turn}", 2)
            )
    return video.id


async def test_the_generations_of_messages_load_in_one_statement(
    gql: GraphQLClient, services: Services, sql_counter: StatementCounter
) -> None:
    small = await _seed_generations(services, 2)
    large = await _seed_generations(services, 30)

    counts = []
    for video, frames in ((small, 2), (large, 30)):
        with sql_counter:
            data = await gql.data(GENERATIONS, {"id": encode_id("Video", video)})
        counts.append(len(sql_counter.statements))
        found = data["video"]["frames"]
        assert len(found) == frames
        assert all(
            node["generation"] == {"status": "QUEUED", "requestedCount": 2}
            for frame in found
            for node in frame["messages"]["nodes"]
        )

    # the bearer token; video, frames, messages, their generations
    assert counts == [5, 5], sql_counter.statements


async def _run_generation(services: Services, frame_id: int, images: int) -> None:
    generation_id = await services.generation.prepare(
        GenerationRequest(Place(PlaceKind.FRAME, frame_id), "owls", images)
    )
    await services.generation.run(generation_id)


async def test_a_generation_costs_a_few_statements_per_image(
    services: Services, sql_counter: StatementCounter
) -> None:
    project = await services.projects.create("Work")
    assert project.id is not None
    video = await services.videos.create(project.id, "Video")
    assert video.id is not None
    frame = await services.frames.create(video.id, "Frame")
    assert frame.id is not None

    counts = []
    for images in (1, 4):
        with sql_counter:
            await _run_generation(services, frame.id, images)
        counts.append(len(sql_counter.statements))

    # Asking: the chat's owner, the message, the generation (3). Running: starting it, reading
    # it with its message, frame and references (5), then for each image, in a transaction of
    # its own, the chat's owner, its lock, the generation, the image, its placement (looked
    # for, then added) and the counts (7), and at the end the generation and message read
    # and written (4).
    assert counts == [3 + 5 + 7 + 4, 3 + 5 + 4 * 7 + 4]
