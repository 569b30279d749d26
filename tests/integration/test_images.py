"""Images and their places: copying, moving, removing, deleting, within and across projects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from storyframe.db.repository import SqlUnitOfWork
from storyframe.domain.ports import Doomed
from storyframe.runtime import Runtime
from storyframe.services.accounts import Session as AccountSession
from storyframe.services.deletion import doom_chat_history, doom_files
from tests.support.clients import GraphQLClient
from tests.support.documents import (
    COPY_IMAGE,
    DELETE_IMAGE,
    DELETE_PROJECT,
    IMAGE_PARTS,
    MOVE_IMAGE,
    REMOVE_IMAGE,
    SELECT_FRAME_IMAGE,
)
from tests.support.generating import generate_document
from tests.support.ids import pk_of, place_of
from tests.support.scenes import (
    SeededVideo,
    copy_image,
    create_frame,
    create_frames,
    create_project,
    create_video,
    ids,
    places,
    refused,
    seed_frame,
    seed_video,
    select_image,
    state,
)
from tests.support.seeds import Seeds, add_image, generate
from tests.support.sql import until_waiting_for_locks

IMAGE = (
    IMAGE_PARTS
    + """
query Image($id: ID!) {
  image(id: $id) { ...ImageParts }
}
"""
)

PLACE_COUNTS = """
query Places($frame: ID!, $project: ID!) {
  frame(id: $frame) { imageCount selectedImage { id } images { nodes { id } } }
  project(id: $project) {
    imageCount galleryCount
    gallery { nodes { id } }
    images { nodes { id } }
  }
}
"""

PROJECT = """
query Project($id: ID!) {
  project(id: $id) {
    imageCount galleryCount
    images { nodes { id url } }
    gallery { nodes { id } }
  }
}
"""

VIDEO = """
query Video($id: ID!) {
  video(id: $id) { imageCount frames { id imageCount selectedImage { id } } }
}
"""

MESSAGE = """
query Message($id: ID!) {
  node(id: $id) { ... on Message { images { id } } }
}
"""


async def _image(gql: GraphQLClient, image_id: str) -> dict[str, Any] | None:
    image: dict[str, Any] | None = (await gql.data(IMAGE, {"id": image_id}))["image"]
    return image


async def _places(gql: GraphQLClient, image_id: str) -> set[tuple[str, str]]:
    image = await _image(gql, image_id)
    assert image is not None
    return places(image)


# --- appearsIn --------------------------------------------------------------------------------


async def test_appears_in_lists_every_kind_of_place(gql: GraphQLClient, seeds: Seeds) -> None:
    # given an image made in a frame
    video, frame_id = await seed_frame(gql)
    _, (image_id,) = await generate(seeds, frame_id)

    # when it is copied to a context, a main chat and the gallery
    for target in [video.context_id, video.main_chat_id, video.project_id]:
        await copy_image(gql, image_id, target)

    # then
    image = await _image(gql, image_id)
    assert image is not None
    assert [(p["__typename"], p["id"]) for p in image["appearsIn"]] == [
        ("Frame", frame_id),
        ("Context", video.context_id),
        ("MainChat", video.main_chat_id),
        ("Project", video.project_id),
    ]


# --- copying ----------------------------------------------------------------------------------


async def test_copy_image_within_a_project_adds_a_place(gql: GraphQLClient, seeds: Seeds) -> None:
    # given
    video = await seed_video(gql)
    source, target = await create_frames(gql, video.id, ["source", "target"])
    message_id, (image_id,) = await generate(seeds, source)

    # when
    payload = await gql.mutate(COPY_IMAGE, {"imageId": image_id, "targetId": target})

    # then
    image = payload["image"]
    assert image["id"] == image_id
    assert image["project"] == {"id": video.project_id}
    assert image["message"] == {"id": message_id}
    assert places(image) == {("Frame", source), ("Frame", target)}
    assert payload["target"] == {"__typename": "Frame", "id": target}
    assert payload["source"] is None
    counts = await gql.data(PLACE_COUNTS, {"frame": target, "project": video.project_id})
    assert ids(counts["frame"]["images"]["nodes"]) == [image_id]
    assert counts["project"]["imageCount"] == 1


async def test_copy_image_twice_to_the_same_place_changes_nothing(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video, frame_id = await seed_frame(gql)
    _, (image_id,) = await generate(seeds, frame_id)
    await copy_image(gql, image_id, video.project_id)
    before = await state(gql)

    # when
    payload = await gql.mutate(COPY_IMAGE, {"imageId": image_id, "targetId": video.project_id})

    # then
    assert payload["image"]["id"] == image_id
    assert await state(gql) == before
    counts = await gql.data(PLACE_COUNTS, {"frame": frame_id, "project": video.project_id})
    assert counts["project"]["galleryCount"] == 1
    assert ids(counts["project"]["gallery"]["nodes"]) == [image_id]


async def test_copy_image_to_a_place_it_was_made_in_changes_nothing(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video = await seed_video(gql)
    _, (image_id,) = await generate(seeds, video.main_chat_id)
    before = await state(gql)

    # when
    payload = await gql.mutate(COPY_IMAGE, {"imageId": image_id, "targetId": video.main_chat_id})

    # then
    assert places(payload["image"]) == {("MainChat", video.main_chat_id)}
    assert await state(gql) == before


async def test_copy_image_across_projects_makes_a_new_image_of_the_target(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given an image of one project, and a frame of another
    source = await seed_video(gql, "Source")
    target = await seed_video(gql, "Target")
    target_frame = await create_frame(gql, target.id)
    message_id, (image_id,) = await generate(seeds, source.main_chat_id)
    original = await _image(gql, image_id)

    # when
    payload = await gql.mutate(COPY_IMAGE, {"imageId": image_id, "targetId": target_frame})

    # then the copy is a new image of the target project sharing the stored file
    copy = payload["image"]
    assert copy["id"] != image_id
    assert original is not None
    same = ["url", "width", "height", "contentType", "byteSize"]
    assert {k: copy[k] for k in same} == {k: original[k] for k in same}
    assert copy["project"] == {"id": target.project_id}
    assert copy["message"] is None
    assert places(copy) == {("Frame", target_frame)}
    assert payload["target"] == {"__typename": "Frame", "id": target_frame}
    # and the original is untouched
    assert await _image(gql, image_id) == original
    assert original["message"] == {"id": message_id}
    source_project = (await gql.data(PROJECT, {"id": source.project_id}))["project"]
    assert ids(source_project["images"]["nodes"]) == [image_id]
    target_project = (await gql.data(PROJECT, {"id": target.project_id}))["project"]
    assert target_project["imageCount"] == 1
    assert target_project["images"]["nodes"] == [{"id": copy["id"], "url": original["url"]}]
    target_video = (await gql.data(VIDEO, {"id": target.id}))["video"]
    assert target_video["imageCount"] == 1
    assert target_video["frames"][0]["imageCount"] == 1


async def test_a_copy_across_projects_outlives_its_original(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    source = await seed_video(gql, "Source")
    target = await seed_video(gql, "Target")
    image_id = await add_image(seeds, source.project_id)
    copy_id = await copy_image(gql, image_id, target.project_id)

    # when
    payload = await gql.mutate(DELETE_PROJECT, {"id": source.project_id})

    # then
    assert payload["deleted"] == {"videos": 1, "frames": 0, "messages": 0, "images": 1}
    assert await _image(gql, image_id) is None
    assert await _places(gql, copy_id) == {("Project", target.project_id)}


# --- moving -----------------------------------------------------------------------------------


async def test_move_image_within_a_project(gql: GraphQLClient, seeds: Seeds) -> None:
    # given an image in a frame and the main chat
    video, frame_id = await seed_frame(gql)
    message_id, (image_id,) = await generate(seeds, frame_id)
    await copy_image(gql, image_id, video.main_chat_id)

    # when it moves from the frame to the gallery
    payload = await gql.mutate(
        MOVE_IMAGE, {"imageId": image_id, "sourceId": frame_id, "targetId": video.project_id}
    )

    # then
    image = payload["image"]
    assert image["id"] == image_id
    assert image["project"] == {"id": video.project_id}
    assert image["message"] == {"id": message_id}
    assert places(image) == {("MainChat", video.main_chat_id), ("Project", video.project_id)}
    assert payload["source"] == {"__typename": "Frame", "id": frame_id}
    assert payload["target"] == {"__typename": "Project", "id": video.project_id}
    counts = await gql.data(PLACE_COUNTS, {"frame": frame_id, "project": video.project_id})
    assert counts["frame"]["images"]["nodes"] == []
    assert ids(counts["project"]["gallery"]["nodes"]) == [image_id]
    assert counts["project"]["imageCount"] == 1


async def test_move_image_between_videos_of_a_project(gql: GraphQLClient, seeds: Seeds) -> None:
    # given
    project_id = (await seed_video(gql, "First")).project_id
    first = await create_video(gql, project_id, "A")
    second = await create_video(gql, project_id, "B")
    _, (image_id,) = await generate(seeds, first.context_id)

    # when
    payload = await gql.mutate(
        MOVE_IMAGE,
        {"imageId": image_id, "sourceId": first.context_id, "targetId": second.context_id},
    )

    # then
    assert places(payload["image"]) == {("Context", second.context_id)}
    assert payload["image"]["project"] == {"id": project_id}


async def test_moving_the_selected_image_out_of_a_frame_unselects_it(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given two frames showing an image, selected in both
    video = await seed_video(gql)
    source, other = await create_frames(gql, video.id, ["source", "other"])
    _, (image_id,) = await generate(seeds, source)
    await copy_image(gql, image_id, other)
    await select_image(gql, source, image_id)
    await select_image(gql, other, image_id)

    # when
    await gql.mutate(
        MOVE_IMAGE, {"imageId": image_id, "sourceId": source, "targetId": video.context_id}
    )

    # then
    frames = (await gql.data(VIDEO, {"id": video.id}))["video"]["frames"]
    assert [f["selectedImage"] for f in frames] == [None, {"id": image_id}]


async def test_move_image_across_projects_hands_it_over(gql: GraphQLClient, seeds: Seeds) -> None:
    # given an image shown in several places of its project and selected in two frames
    old = await seed_video(gql, "Old")
    new = await seed_video(gql, "New")
    old_frame, selecting = await create_frames(gql, old.id, ["made", "selecting"])
    new_frame = await create_frame(gql, new.id)
    message_id, (image_id,) = await generate(seeds, old_frame)
    _, (sibling,) = await generate(seeds, old_frame)
    for target in [selecting, old.main_chat_id, old.project_id]:
        await copy_image(gql, image_id, target)
    await select_image(gql, old_frame, image_id)
    await select_image(gql, selecting, image_id)

    # when it moves from the main chat to a frame of the other project
    payload = await gql.mutate(
        MOVE_IMAGE, {"imageId": image_id, "sourceId": old.main_chat_id, "targetId": new_frame}
    )

    # then it belongs to the new project only, with no producing message
    image = payload["image"]
    assert image["id"] == image_id
    assert image["project"] == {"id": new.project_id}
    assert image["message"] is None
    assert places(image) == {("Frame", new_frame)}
    assert payload["source"] == {"__typename": "MainChat", "id": old.main_chat_id}
    assert payload["target"] == {"__typename": "Frame", "id": new_frame}
    # and the old project shows it nowhere, selects it nowhere
    old_frames = (await gql.data(VIDEO, {"id": old.id}))["video"]
    assert old_frames["imageCount"] == 1
    assert [f["selectedImage"] for f in old_frames["frames"]] == [None, None]
    assert [f["imageCount"] for f in old_frames["frames"]] == [1, 0]
    old_project = (await gql.data(PROJECT, {"id": old.project_id}))["project"]
    assert (old_project["imageCount"], old_project["galleryCount"]) == (1, 0)
    assert ids(old_project["images"]["nodes"]) == [sibling]
    new_project = (await gql.data(PROJECT, {"id": new.project_id}))["project"]
    assert ids(new_project["images"]["nodes"]) == [image_id]
    assert ids((await gql.data(MESSAGE, {"id": message_id}))["node"]["images"]) == []
    new_video = (await gql.data(VIDEO, {"id": new.id}))["video"]
    assert new_video["imageCount"] == 1


async def test_an_image_moved_across_projects_survives_its_old_project(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given an image made in one project and moved to another's gallery
    old = await seed_video(gql, "Old")
    new = await seed_video(gql, "New")
    _, (image_id,) = await generate(seeds, old.context_id)
    await gql.mutate(
        MOVE_IMAGE,
        {"imageId": image_id, "sourceId": old.context_id, "targetId": new.project_id},
    )

    # when
    payload = await gql.mutate(DELETE_PROJECT, {"id": old.project_id})

    # then
    assert payload["deleted"] == {"videos": 1, "frames": 0, "messages": 1, "images": 0}
    assert await _places(gql, image_id) == {("Project", new.project_id)}


async def test_moving_an_image_from_a_place_it_is_not_in_is_refused(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video = await seed_video(gql)
    frame_id, other = await create_frames(gql, video.id, ["a", "b"])
    _, (image_id,) = await generate(seeds, frame_id)

    # when
    payload, error = await refused(
        gql, MOVE_IMAGE, {"imageId": image_id, "sourceId": other, "targetId": video.project_id}
    )

    # then
    assert (payload["image"], payload["source"], payload["target"]) == (None, None, None)
    assert (error["code"], error["field"]) == ("NOT_IN_PLACE", ["sourceId"])


async def test_moving_across_projects_from_a_place_it_is_not_in_is_refused(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given an image in a frame, and a move naming the gallery as its source
    old = await seed_video(gql, "Old")
    new = await seed_video(gql, "New")
    frame_id = await create_frame(gql, old.id)
    _, (image_id,) = await generate(seeds, frame_id)
    await select_image(gql, frame_id, image_id)
    move = {"imageId": image_id, "sourceId": old.project_id, "targetId": new.project_id}

    # when nothing is handed over
    _, error = await refused(gql, MOVE_IMAGE, move)

    # then
    assert (error["code"], error["field"]) == ("NOT_IN_PLACE", ["sourceId"])


@pytest.mark.parametrize("place", ["frame", "gallery"])
async def test_moving_an_image_to_where_it_is_is_refused(
    gql: GraphQLClient, seeds: Seeds, place: str
) -> None:
    # given
    video, frame_id = await seed_frame(gql)
    _, (image_id,) = await generate(seeds, frame_id)
    await copy_image(gql, image_id, video.project_id)
    place_id = frame_id if place == "frame" else video.project_id

    # when
    payload, error = await refused(
        gql, MOVE_IMAGE, {"imageId": image_id, "sourceId": place_id, "targetId": place_id}
    )

    # then
    assert (error["code"], error["field"]) == ("SAME_PLACE", ["targetId"])
    assert payload["image"] is None


async def test_moving_to_a_place_that_already_shows_it_leaves_one_placement(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video, frame_id = await seed_frame(gql)
    _, (image_id,) = await generate(seeds, frame_id)
    await copy_image(gql, image_id, video.project_id)

    # when
    payload = await gql.mutate(
        MOVE_IMAGE, {"imageId": image_id, "sourceId": frame_id, "targetId": video.project_id}
    )

    # then
    assert [(p["__typename"], p["id"]) for p in payload["image"]["appearsIn"]] == [
        ("Project", video.project_id)
    ]
    counts = await gql.data(PLACE_COUNTS, {"frame": frame_id, "project": video.project_id})
    assert (counts["frame"]["imageCount"], counts["project"]["galleryCount"]) == (0, 1)


# --- removing ---------------------------------------------------------------------------------


async def test_remove_image_takes_it_out_of_one_place_only(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video, frame_id = await seed_frame(gql)
    message_id, (image_id,) = await generate(seeds, frame_id)
    await copy_image(gql, image_id, video.project_id)

    # when
    payload = await gql.mutate(REMOVE_IMAGE, {"imageId": image_id, "sourceId": video.project_id})

    # then
    image = payload["image"]
    assert places(image) == {("Frame", frame_id)}
    assert image["message"] == {"id": message_id}
    assert payload["source"] == {"__typename": "Project", "id": video.project_id}
    assert payload["target"] is None
    counts = await gql.data(PLACE_COUNTS, {"frame": frame_id, "project": video.project_id})
    assert (counts["project"]["galleryCount"], counts["project"]["imageCount"]) == (0, 1)
    assert ids(counts["frame"]["images"]["nodes"]) == [image_id]


async def test_an_image_removed_from_its_last_place_stays_in_its_project(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video = await seed_video(gql)
    image_id = await add_image(seeds, video.project_id)

    # when
    payload = await gql.mutate(REMOVE_IMAGE, {"imageId": image_id, "sourceId": video.project_id})

    # then
    assert payload["image"]["appearsIn"] == []
    project = (await gql.data(PROJECT, {"id": video.project_id}))["project"]
    assert (project["imageCount"], project["galleryCount"]) == (1, 0)
    assert ids(project["images"]["nodes"]) == [image_id]
    assert await _places(gql, image_id) == set()


async def test_removing_the_selected_image_from_its_frame_unselects_it(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given an image selected in a frame and also in the gallery
    video, frame_id = await seed_frame(gql)
    _, (image_id,) = await generate(seeds, frame_id)
    await copy_image(gql, image_id, video.project_id)
    await select_image(gql, frame_id, image_id)

    # when it leaves the gallery, the selection stays
    await gql.mutate(REMOVE_IMAGE, {"imageId": image_id, "sourceId": video.project_id})
    kept = await gql.data(PLACE_COUNTS, {"frame": frame_id, "project": video.project_id})
    # and when it leaves the frame, the selection goes
    await gql.mutate(REMOVE_IMAGE, {"imageId": image_id, "sourceId": frame_id})

    # then
    assert kept["frame"]["selectedImage"] == {"id": image_id}
    gone = await gql.data(PLACE_COUNTS, {"frame": frame_id, "project": video.project_id})
    assert gone["frame"]["selectedImage"] is None
    assert gone["frame"]["images"]["nodes"] == []


async def test_removing_an_image_from_a_place_it_is_not_in_is_refused(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video = await seed_video(gql)
    _, (image_id,) = await generate(seeds, video.context_id)

    # when
    payload, error = await refused(
        gql, REMOVE_IMAGE, {"imageId": image_id, "sourceId": video.main_chat_id}
    )

    # then
    assert payload["image"] is None
    assert (error["code"], error["field"]) == ("NOT_IN_PLACE", ["sourceId"])


# --- deleting ---------------------------------------------------------------------------------


async def test_delete_image_removes_it_everywhere_and_clears_selections(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given an image shown in two frames (selected in both), the context and the gallery
    video = await seed_video(gql)
    made_in, other = await create_frames(gql, video.id, ["made", "other"])
    message_id, (image_id, sibling) = await generate(seeds, made_in, images=2)
    for target in [other, video.context_id, video.project_id]:
        await copy_image(gql, image_id, target)
    await select_image(gql, made_in, image_id)
    await select_image(gql, other, image_id)

    # when
    payload = await gql.mutate(DELETE_IMAGE, {"id": image_id})

    # then
    assert payload["deletedId"] == image_id
    assert payload["deleted"] == {"videos": 0, "frames": 0, "messages": 0, "images": 1}
    assert await _image(gql, image_id) is None
    frames = (await gql.data(VIDEO, {"id": video.id}))["video"]["frames"]
    assert [f["selectedImage"] for f in frames] == [None, None]
    assert [f["imageCount"] for f in frames] == [1, 0]
    project = (await gql.data(PROJECT, {"id": video.project_id}))["project"]
    assert (project["imageCount"], project["galleryCount"]) == (1, 0)
    assert ids((await gql.data(MESSAGE, {"id": message_id}))["node"]["images"]) == [sibling]


async def test_delete_image_leaves_other_images_selected(gql: GraphQLClient, seeds: Seeds) -> None:
    # given
    video = await seed_video(gql)
    first, second = await create_frames(gql, video.id, ["a", "b"])
    _, (doomed,) = await generate(seeds, first)
    _, (kept,) = await generate(seeds, second)
    await select_image(gql, first, doomed)
    await select_image(gql, second, kept)

    # when
    await gql.mutate(DELETE_IMAGE, {"id": doomed})

    # then
    frames = (await gql.data(VIDEO, {"id": video.id}))["video"]["frames"]
    assert [f["selectedImage"] for f in frames] == [None, {"id": kept}]


async def _image_in_a_frame(gql: GraphQLClient, seeds: Seeds) -> tuple[SeededVideo, str, str, str]:
    """A video; its frames "source", holding an image, and "target"; and the image."""
    video = await seed_video(gql)
    source, target = await create_frames(gql, video.id, ["source", "target"])
    _, (image_id,) = await generate(seeds, source)
    return video, source, target, image_id


@pytest.mark.parametrize("operation", ["copy", "move"])
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_an_image_going_into_a_frame_being_deleted_is_refused_cleanly(
    gql: GraphQLClient,
    seeds: Seeds,
    runtime: Runtime,
    owner: AccountSession,
    operation: str,
) -> None:
    # given an image in one frame, and another frame whose deletion is under way
    video, source, target, image_id = await _image_in_a_frame(gql, seeds)
    assert owner.user.id is not None
    async with SqlUnitOfWork(runtime.sessions, owner.user.id)() as repo:
        await repo.lock_video(pk_of(video.id))
        doomed = Doomed(frames={place_of(target).id})
        await doom_chat_history(repo, doomed, place_of(target))
        await repo.delete(doomed)

        # when the image is copied or moved there meanwhile
        document, variables = (
            (COPY_IMAGE, {"imageId": image_id, "targetId": target})
            if operation == "copy"
            else (MOVE_IMAGE, {"imageId": image_id, "sourceId": source, "targetId": target})
        )
        request = asyncio.create_task(gql.execute(document, variables))
        await until_waiting_for_locks(runtime.engine, 1)
        await repo.commit()
    result = await request

    # then it is told the frame is gone, and the image stays where it was
    assert "errors" not in result, result
    (payload,) = result["data"].values()
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["targetId"], "NOT_FOUND")]
    frame = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on Frame { images { nodes { id } } } } }",
        {"id": source},
    )
    assert ids(frame["node"]["images"]["nodes"]) == [image_id]


@pytest.mark.parametrize(
    "operation", ["copy", "copy to another project", "move", "select", "attach as a reference"]
)
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_what_would_refer_to_an_image_being_deleted_is_refused_cleanly(
    gql: GraphQLClient,
    seeds: Seeds,
    runtime: Runtime,
    owner: AccountSession,
    operation: str,
) -> None:
    # given an image in a frame, whose deletion is under way
    _, source, target, image_id = await _image_in_a_frame(gql, seeds)
    elsewhere = await create_project(gql, "Elsewhere")
    assert owner.user.id is not None
    async with SqlUnitOfWork(runtime.sessions, owner.user.id)() as repo:
        doomed = Doomed(images={pk_of(image_id)})
        await doom_files(repo, doomed)
        await repo.delete(doomed)

        # when something would come to refer to it meanwhile
        cases: dict[str, tuple[str, dict[str, Any], str]] = {
            "copy": (COPY_IMAGE, {"imageId": image_id, "targetId": target}, "imageId"),
            "copy to another project": (
                COPY_IMAGE,
                {"imageId": image_id, "targetId": elsewhere},
                "imageId",
            ),
            "move": (
                MOVE_IMAGE,
                {"imageId": image_id, "sourceId": source, "targetId": target},
                "imageId",
            ),
            "select": (SELECT_FRAME_IMAGE, {"frameId": source, "imageId": image_id}, "imageId"),
            "attach as a reference": (
                generate_document("Frame"),
                {"input": {"frameId": target, "prompt": "owls", "contextImageIds": [image_id]}},
                "contextImageIds",
            ),
        }
        document, variables, field = cases[operation]
        request = asyncio.create_task(gql.execute(document, variables))
        await until_waiting_for_locks(runtime.engine, 1)
        await repo.commit()
    result = await request

    # then it is told the image is gone (not a foreign-key error, nor a copy of bytes about to
    # be released), and nothing was added
    assert "errors" not in result, result
    (payload,) = result["data"].values()
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [([field], "NOT_FOUND")]
    projects = (await state(gql))["projects"]["nodes"]
    assert [p["images"]["nodes"] for p in projects] == [[], []]
    (frames,) = [v["frames"] for p in projects for v in p["videos"]["nodes"]]
    assert [(f["title"], f["messageCount"]) for f in frames] == [("source", 1), ("target", 0)]


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_an_image_deleted_while_it_moves_goes_after_the_move(
    gql: GraphQLClient, seeds: Seeds, runtime: Runtime, owner: AccountSession
) -> None:
    # given an image being moved: held, and out of its first frame
    _, source, target, image_id = await _image_in_a_frame(gql, seeds)
    assert owner.user.id is not None
    async with SqlUnitOfWork(runtime.sessions, owner.user.id)() as repo:
        assert await repo.lock_images([pk_of(image_id)], exclusive=False)

        # when its deletion starts meanwhile, and then the move ends
        deleting = asyncio.create_task(gql.execute(DELETE_IMAGE, {"id": image_id}))
        await until_waiting_for_locks(runtime.engine, 1)
        assert await repo.remove_placement(pk_of(image_id), place_of(source))
        await repo.add_placement(pk_of(image_id), place_of(target))
        await repo.commit()
    result = await deleting

    # then the deletion waited for the move (rather than holding the placement the move takes
    # out, which deadlocks), and took the image from where it had moved to
    assert "errors" not in result, result
    assert result["data"]["deleteImage"]["userErrors"] == []
    projects = (await state(gql))["projects"]["nodes"]
    assert [p["images"]["nodes"] for p in projects] == [[]]
    frames = projects[0]["videos"]["nodes"][0]["frames"]
    assert [f["images"]["nodes"] for f in frames] == [[], []]
