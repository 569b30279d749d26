"""The bounds on plain lists, through the API: a video's frames and main chats, an image's places.

A list at its bound refuses to grow with `LIMIT_REACHED`, changing nothing; requests racing for
its last slot are counted one after the other, under the lock of what the list belongs to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from storyframe.db.repository import SqlUnitOfWork
from storyframe.db.tables import Frame, MainChat
from storyframe.runtime import Runtime
from storyframe.services.accounts import Session as AccountSession
from storyframe.settings import Settings
from tests.support.apps import app_with, seeds_of
from tests.support.clients import GraphQLClient, client_of
from tests.support.documents import COPY_IMAGE, CREATE_FRAME, CREATE_MAIN_CHAT, MOVE_IMAGE
from tests.support.ids import known, pk_of, place_of
from tests.support.scenes import (
    SeededVideo,
    copy_image,
    create_frame,
    create_main_chat,
    create_project,
    create_video,
    places,
    seed_frame,
    seed_video,
)
from tests.support.seeds import Seeds, add_image
from tests.support.sql import dump, until_waiting_for_locks

LIMIT = 2

IMAGE = """
query($id: ID!) { node(id: $id) { ... on Image { appearsIn { __typename ... on Node { id } } } } }
"""


@dataclass(frozen=True, slots=True)
class Limited:
    """The owner's client and seeds of an app whose lists are bounded at LIMIT."""

    gql: GraphQLClient
    seeds: Seeds
    runtime: Runtime
    owner_id: int

    def transaction(self) -> SqlUnitOfWork:
        """Another request's unit of work, to hold its locks while a request waits for them."""
        return SqlUnitOfWork(self.runtime.sessions, self.owner_id)


@pytest.fixture
async def limited(settings: Settings, owner: AccountSession) -> AsyncIterator[Limited]:
    async with (
        app_with(
            settings,
            max_frames_per_video=LIMIT,
            max_main_chats_per_video=LIMIT,
            max_image_places=LIMIT,
        ) as app,
        client_of(app, owner.token) as gql,
    ):
        runtime: Runtime = app.state.runtime
        yield Limited(
            gql,
            seeds_of(runtime, owner),
            runtime,
            known(owner.user.id),
        )


def payload_of(result: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in result, result
    (payload,) = result["data"].values()
    found: dict[str, Any] = payload
    return found


def limit_reached(field: str, message: str) -> list[dict[str, Any]]:
    return [{"field": [field], "message": message, "code": "LIMIT_REACHED"}]


async def frame_titles(gql: GraphQLClient, video_id: str) -> list[str]:
    data = await gql.data(
        "query($id: ID!) { video(id: $id) { frames { title } } }", {"id": video_id}
    )
    return [frame["title"] for frame in data["video"]["frames"]]


async def main_chat_names(gql: GraphQLClient, video_id: str) -> list[str]:
    data = await gql.data(
        "query($id: ID!) { video(id: $id) { mainChats { name } } }", {"id": video_id}
    )
    return [chat["name"] for chat in data["video"]["mainChats"]]


async def refused_at_the_limit(
    limited: Limited, document: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """The payload of a mutation refused at a bound, which changed no row."""
    before = await dump(limited.runtime.engine)
    payload = payload_of(await limited.gql.execute(document, variables))
    assert await dump(limited.runtime.engine) == before
    return payload


# frames of a video


@pytest.mark.parametrize("order", [None, 0])
async def test_a_frame_beyond_the_limit_is_refused_and_changes_nothing(
    limited: Limited, order: int | None
) -> None:
    # given a video with as many frames as it may have
    gql = limited.gql
    video = await seed_video(gql)
    for title in ("one", "two"):
        await create_frame(gql, video.id, title)

    # when
    variables = {"videoId": video.id, "title": "three", "order": order}
    payload = await refused_at_the_limit(limited, CREATE_FRAME, variables)

    # then
    assert payload["frame"] is None
    assert payload["userErrors"] == limit_reached("videoId", "a video has at most 2 frames")


async def test_each_video_has_its_own_frames_and_a_deleted_frame_makes_room(
    limited: Limited,
) -> None:
    # given a full video
    gql = limited.gql
    video = await seed_video(gql)
    first, _ = [await create_frame(gql, video.id, title) for title in ("one", "two")]

    # when
    other = await create_video(gql, video.project_id, "Other")
    await create_frame(gql, other.id, "elsewhere")
    await gql.mutate(
        "mutation($id: ID!) { deleteFrame(input: {id: $id}) { userErrors { code } } }",
        {"id": first},
    )
    await create_frame(gql, video.id, "three")

    # then
    assert await frame_titles(gql, other.id) == ["elsewhere"]
    assert await frame_titles(gql, video.id) == ["two", "three"]


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_two_frames_racing_for_the_last_slot_are_not_both_created(limited: Limited) -> None:
    # given a video one frame short of its limit, whose lock another request holds
    gql = limited.gql
    video = await seed_video(gql)
    await create_frame(gql, video.id, "one")
    async with limited.transaction()() as repo:
        await repo.lock_video(pk_of(video.id))

        # when two requests for a frame come meanwhile, and wait
        requests = [
            asyncio.create_task(gql.execute(CREATE_FRAME, {"videoId": video.id, "title": title}))
            for title in ("red", "blue")
        ]
        await until_waiting_for_locks(limited.runtime.engine, 2)
        await repo.commit()
    results = [payload_of(result) for result in await asyncio.gather(*requests)]

    # then the one that got the lock second counted the other's frame
    created = [p["frame"] for p in results if p["frame"] is not None]
    refused = [p["userErrors"] for p in results if p["frame"] is None]
    assert len(created) == 1
    assert refused == [limit_reached("videoId", "a video has at most 2 frames")]
    assert len(await frame_titles(gql, video.id)) == LIMIT


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_a_frame_added_while_a_request_waits_for_the_video_is_counted(
    limited: Limited,
) -> None:
    # given a video one frame short of its limit, getting a frame in another request
    gql = limited.gql
    video = await seed_video(gql)
    await create_frame(gql, video.id, "one")
    async with limited.transaction()() as repo:
        await repo.lock_video(pk_of(video.id))

        # when a request for a frame comes meanwhile, and the other request adds the last one
        request = asyncio.create_task(
            gql.execute(CREATE_FRAME, {"videoId": video.id, "title": "late"})
        )
        await until_waiting_for_locks(limited.runtime.engine, 1)
        await repo.add(Frame(video_id=pk_of(video.id), title="meanwhile", order=1))
        await repo.commit()
    payload = payload_of(await request)

    # then
    assert payload["userErrors"] == limit_reached("videoId", "a video has at most 2 frames")
    assert await frame_titles(gql, video.id) == ["one", "meanwhile"]


# main chats of a video


async def test_a_main_chat_beyond_the_limit_is_refused_and_changes_nothing(
    limited: Limited,
) -> None:
    # given a video with its first main chat and one more
    gql = limited.gql
    video = await seed_video(gql)
    await create_main_chat(gql, video.id, "Second")

    # when
    variables = {"videoId": video.id, "name": "Third"}
    payload = await refused_at_the_limit(limited, CREATE_MAIN_CHAT, variables)

    # then
    assert payload["mainChat"] is None
    assert payload["userErrors"] == limit_reached("videoId", "a video has at most 2 main chats")


async def test_each_video_has_its_own_main_chats_and_a_deleted_one_makes_room(
    limited: Limited,
) -> None:
    # given a full video
    gql = limited.gql
    video = await seed_video(gql)
    await create_main_chat(gql, video.id, "Second")

    # when
    other = await create_video(gql, video.project_id, "Other")
    await create_main_chat(gql, other.id, "Second")
    await gql.mutate(
        "mutation($id: ID!) { deleteMainChat(input: {id: $id}) { userErrors { code } } }",
        {"id": video.main_chat_id},
    )
    await create_main_chat(gql, video.id, "Third")

    # then
    assert await main_chat_names(gql, other.id) == ["Main chat", "Second"]
    assert await main_chat_names(gql, video.id) == ["Second", "Third"]


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_a_main_chat_added_while_a_request_waits_for_the_video_is_counted(
    limited: Limited,
) -> None:
    # given a video one main chat short of its limit, getting one in another request
    gql = limited.gql
    video = await seed_video(gql)
    async with limited.transaction()() as repo:
        await repo.lock_video(pk_of(video.id))

        # when a request for a main chat comes meanwhile, and the other request adds the last
        request = asyncio.create_task(
            gql.execute(CREATE_MAIN_CHAT, {"videoId": video.id, "name": "Late"})
        )
        await until_waiting_for_locks(limited.runtime.engine, 1)
        await repo.add(MainChat(video_id=pk_of(video.id), name="Meanwhile"))
        await repo.commit()
    payload = payload_of(await request)

    # then
    assert payload["userErrors"] == limit_reached("videoId", "a video has at most 2 main chats")
    assert await main_chat_names(gql, video.id) == ["Main chat", "Meanwhile"]


# places of an image


async def image_in_two_places(limited: Limited) -> tuple[SeededVideo, str, str]:
    """A video, and an image appearing in a frame of it and in its project's gallery."""
    video = await seed_video(limited.gql)
    frame = await create_frame(limited.gql, video.id, "shot")
    image = await add_image(limited.seeds, frame)
    await copy_image(limited.gql, image, video.project_id)
    return video, frame, image


async def places_of(gql: GraphQLClient, image_id: str) -> set[tuple[str, str]]:
    return places((await gql.data(IMAGE, {"id": image_id}))["node"])


async def test_copying_an_image_into_one_place_too_many_is_refused_and_changes_nothing(
    limited: Limited,
) -> None:
    # given
    video, _, image = await image_in_two_places(limited)

    # when
    variables = {"imageId": image, "targetId": video.context_id}
    payload = await refused_at_the_limit(limited, COPY_IMAGE, variables)

    # then
    assert payload["image"] is None
    assert payload["userErrors"] == limit_reached("imageId", "an image appears in at most 2 places")


async def test_an_image_at_the_limit_is_still_copied_where_it_is_or_to_another_project(
    limited: Limited,
) -> None:
    # given
    gql = limited.gql
    video, frame, image = await image_in_two_places(limited)
    elsewhere = await create_project(gql, "Elsewhere")

    # when
    same = await copy_image(gql, image, frame)
    copied = await copy_image(gql, image, elsewhere)

    # then
    assert same == image
    assert await places_of(gql, image) == {("Frame", frame), ("Project", video.project_id)}
    assert await places_of(gql, copied) == {("Project", elsewhere)}


async def test_an_image_at_the_limit_is_still_moved(limited: Limited) -> None:
    # given
    gql = limited.gql
    video, frame, image = await image_in_two_places(limited)

    # when
    payload = await gql.mutate(
        MOVE_IMAGE, {"imageId": image, "sourceId": frame, "targetId": video.context_id}
    )

    # then
    assert places(payload["image"]) == {
        ("Context", video.context_id),
        ("Project", video.project_id),
    }


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_a_place_added_while_a_copy_waits_for_the_image_is_counted(
    limited: Limited,
) -> None:
    # given an image one place short of its limit, being copied into a frame of another video
    # by another request
    gql = limited.gql
    video, frame = await seed_frame(gql, "shot")
    image = await add_image(limited.seeds, frame)
    other = await create_video(gql, video.project_id, "Other")
    elsewhere = await create_frame(gql, other.id, "there")
    async with limited.transaction()() as repo:
        assert await repo.lock_image_places(pk_of(image))

        # when a copy into the context comes meanwhile, and the other request adds the last place
        request = asyncio.create_task(
            gql.execute(COPY_IMAGE, {"imageId": image, "targetId": video.context_id})
        )
        await until_waiting_for_locks(limited.runtime.engine, 1)
        await repo.add_placement(pk_of(image), place_of(elsewhere))
        await repo.commit()
    payload = payload_of(await request)

    # then
    assert payload["userErrors"] == limit_reached("imageId", "an image appears in at most 2 places")
    assert await places_of(gql, image) == {("Frame", frame), ("Frame", elsewhere)}
