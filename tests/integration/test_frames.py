"""Frames: creating at a position, retitling, reordering, deleting, selecting an image."""

from __future__ import annotations

import pytest

from tests.support.clients import GraphQLClient
from tests.support.documents import (
    CREATE_FRAME,
    DELETE_FRAME,
    REORDER_FRAME,
    SELECT_FRAME_IMAGE,
    UPDATE_FRAME,
)
from tests.support.scenes import (
    copy_image,
    create_frame,
    create_frames,
    frame_orders,
    refused,
    seed_frame,
    seed_video,
    select_image,
)
from tests.support.seeds import Seeds, add_image, generate, post_message

CREATE_FRAME_UNTITLED = """
mutation Create($videoId: ID!) {
  createFrame(input: {videoId: $videoId}) {
    frame { id title order }
    userErrors { field message code }
  }
}
"""

TWO_FRAMES_IN_ONE_DOCUMENT = """
mutation Two($videoId: ID!) {
  first: createFrame(input: {videoId: $videoId, title: "first"}) {
    frame { order video { frames { title } } }
    userErrors { code }
  }
  second: createFrame(input: {videoId: $videoId, title: "second", order: 0}) {
    frame { order video { frames { title } } }
    userErrors { code }
  }
}
"""

FRAME = """
query Frame($id: ID!) {
  frame(id: $id) {
    id title order messageCount imageCount
    selectedImage { id }
    images { nodes { id } }
  }
}
"""

IMAGE = """
query Image($id: ID!) {
  image(id: $id) { id appearsIn { __typename ... on Node { id } } }
}
"""


# --- creating ---------------------------------------------------------------------------------


async def test_create_frame_appends_when_no_order_is_given(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)
    await create_frames(gql, video.id, ["one", "two"])

    # when
    payload = await gql.mutate(CREATE_FRAME, {"videoId": video.id, "title": "three"})

    # then
    frame = payload["frame"]
    assert (frame["title"], frame["order"]) == ("three", 2)
    assert (frame["messageCount"], frame["imageCount"], frame["selectedImage"]) == (0, 0, None)
    assert frame["video"] == {"id": video.id, "frameCount": 3}
    assert await frame_orders(gql, video.id) == [("one", 0), ("two", 1), ("three", 2)]


async def test_the_first_frame_of_a_video_gets_order_zero(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    payload = await gql.mutate(CREATE_FRAME, {"videoId": video.id, "title": "only", "order": 5})

    # then
    assert payload["frame"]["order"] == 0
    assert await frame_orders(gql, video.id) == [("only", 0)]


async def test_create_frame_without_a_title_is_untitled(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    payload = await gql.mutate(CREATE_FRAME_UNTITLED, {"videoId": video.id})

    # then
    assert (payload["frame"]["title"], payload["frame"]["order"]) == ("", 0)


async def test_create_frame_trims_the_title(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    payload = await gql.mutate(CREATE_FRAME, {"videoId": video.id, "title": "  Sunrise  "})

    # then
    assert payload["frame"]["title"] == "Sunrise"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (0, ["new", "a", "b", "c"]),
        (1, ["a", "new", "b", "c"]),
        (2, ["a", "b", "new", "c"]),
        (3, ["a", "b", "c", "new"]),
    ],
)
async def test_create_frame_at_an_order_inserts_and_shifts_the_rest(
    gql: GraphQLClient, order: int, expected: list[str]
) -> None:
    # given
    video = await seed_video(gql)
    await create_frames(gql, video.id, ["a", "b", "c"])

    # when
    payload = await gql.mutate(CREATE_FRAME, {"videoId": video.id, "title": "new", "order": order})

    # then
    assert payload["frame"]["order"] == order
    assert await frame_orders(gql, video.id) == [(t, i) for i, t in enumerate(expected)]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (-1, ["new", "a", "b"]),
        (-1000, ["new", "a", "b"]),
        (3, ["a", "b", "new"]),
        (2_000_000_000, ["a", "b", "new"]),
    ],
)
async def test_create_frame_clamps_an_out_of_range_order(
    gql: GraphQLClient, order: int, expected: list[str]
) -> None:
    # given
    video = await seed_video(gql)
    await create_frames(gql, video.id, ["a", "b"])

    # when
    payload = await gql.mutate(CREATE_FRAME, {"videoId": video.id, "title": "new", "order": order})

    # then
    assert payload["frame"]["order"] == expected.index("new")
    assert await frame_orders(gql, video.id) == [(t, i) for i, t in enumerate(expected)]


async def test_frames_of_different_videos_are_numbered_apart(gql: GraphQLClient) -> None:
    # given
    first = await seed_video(gql, "First")
    second = await seed_video(gql, "Second")
    await create_frames(gql, first.id, ["a", "b"])

    # when
    await create_frame(gql, second.id, "x", order=0)
    await create_frame(gql, first.id, "c", order=0)

    # then
    assert await frame_orders(gql, first.id) == [("c", 0), ("a", 1), ("b", 2)]
    assert await frame_orders(gql, second.id) == [("x", 0)]


async def test_each_mutation_of_a_document_sees_what_the_previous_one_did(
    gql: GraphQLClient,
) -> None:
    # given
    video = await seed_video(gql)

    # when
    data = await gql.data(TWO_FRAMES_IN_ONE_DOCUMENT, {"videoId": video.id})

    # then
    assert data["first"]["frame"] == {"order": 0, "video": {"frames": [{"title": "first"}]}}
    assert data["second"]["frame"] == {
        "order": 0,
        "video": {"frames": [{"title": "second"}, {"title": "first"}]},
    }


# --- retitling --------------------------------------------------------------------------------


async def test_update_frame_retitles_trimmed_and_keeps_the_order(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)
    frames = await create_frames(gql, video.id, ["a", "b"])

    # when
    payload = await gql.mutate(UPDATE_FRAME, {"id": frames[1], "title": "  Dusk "})

    # then
    assert payload["frame"] == {"id": frames[1], "title": "Dusk", "order": 1}
    assert await frame_orders(gql, video.id) == [("a", 0), ("Dusk", 1)]


async def test_update_frame_may_blank_the_title(gql: GraphQLClient) -> None:
    # given
    _, frame_id = await seed_frame(gql, "Titled")

    # when
    payload = await gql.mutate(UPDATE_FRAME, {"id": frame_id, "title": "   "})

    # then
    assert payload["frame"]["title"] == ""
    assert (await gql.data(FRAME, {"id": frame_id}))["frame"]["title"] == ""


# --- reordering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moved", "new_order", "expected"),
    [
        ("a", 2, ["b", "c", "a", "d", "e"]),
        ("a", 4, ["b", "c", "d", "e", "a"]),
        ("e", 0, ["e", "a", "b", "c", "d"]),
        ("d", 1, ["a", "d", "b", "c", "e"]),
        ("b", 3, ["a", "c", "d", "b", "e"]),
        ("c", 2, ["a", "b", "c", "d", "e"]),
    ],
)
async def test_reorder_frame_moves_it_and_shifts_its_neighbours(
    gql: GraphQLClient, moved: str, new_order: int, expected: list[str]
) -> None:
    # given
    video = await seed_video(gql)
    titles = ["a", "b", "c", "d", "e"]
    frames = dict(zip(titles, await create_frames(gql, video.id, titles), strict=True))

    # when
    payload = await gql.mutate(REORDER_FRAME, {"id": frames[moved], "newOrder": new_order})

    # then
    renumbered = [{"title": t, "order": i} for i, t in enumerate(expected)]
    assert payload["frame"] == {"id": frames[moved], "title": moved, "order": new_order}
    assert payload["video"] == {"id": video.id, "frames": renumbered}
    assert await frame_orders(gql, video.id) == [(t, i) for i, t in enumerate(expected)]


@pytest.mark.parametrize(
    ("moved", "new_order", "expected"),
    [
        ("a", 3, ["b", "c", "a"]),
        ("a", 1_000_000, ["b", "c", "a"]),
        ("c", -1, ["c", "a", "b"]),
        ("b", -2_000_000_000, ["b", "a", "c"]),
    ],
)
async def test_reorder_frame_clamps_the_new_order(
    gql: GraphQLClient, moved: str, new_order: int, expected: list[str]
) -> None:
    # given
    video = await seed_video(gql)
    titles = ["a", "b", "c"]
    frames = dict(zip(titles, await create_frames(gql, video.id, titles), strict=True))

    # when
    payload = await gql.mutate(REORDER_FRAME, {"id": frames[moved], "newOrder": new_order})

    # then
    assert payload["frame"]["order"] == expected.index(moved)
    assert await frame_orders(gql, video.id) == [(t, i) for i, t in enumerate(expected)]


async def test_reordering_the_only_frame_keeps_it_at_zero(gql: GraphQLClient) -> None:
    # given
    video, frame_id = await seed_frame(gql, "solo")

    # when
    payload = await gql.mutate(REORDER_FRAME, {"id": frame_id, "newOrder": 7})

    # then
    assert payload["frame"]["order"] == 0
    assert await frame_orders(gql, video.id) == [("solo", 0)]


async def test_reorder_frame_leaves_other_videos_alone(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql, "Moved")
    other = await seed_video(gql, "Other")
    frames = await create_frames(gql, video.id, ["a", "b"])
    await create_frames(gql, other.id, ["x", "y"])

    # when
    await gql.mutate(REORDER_FRAME, {"id": frames[0], "newOrder": 1})

    # then
    assert await frame_orders(gql, video.id) == [("b", 0), ("a", 1)]
    assert await frame_orders(gql, other.id) == [("x", 0), ("y", 1)]


async def test_orders_stay_contiguous_through_a_sequence_of_edits(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)
    frames = dict(zip("abcd", await create_frames(gql, video.id, list("abcd")), strict=True))
    expected = list("abcd")

    # when / then, after every edit
    async def check() -> None:
        assert await frame_orders(gql, video.id) == [(t, i) for i, t in enumerate(expected)]

    await gql.mutate(REORDER_FRAME, {"id": frames["d"], "newOrder": 0})
    expected = list("dabc")
    await check()
    frames["e"] = await create_frame(gql, video.id, "e", order=2)
    expected = list("daebc")
    await check()
    await gql.mutate(DELETE_FRAME, {"id": frames["a"]})
    expected = list("debc")
    await check()
    await gql.mutate(REORDER_FRAME, {"id": frames["e"], "newOrder": 99})
    expected = list("dbce")
    await check()
    frames["f"] = await create_frame(gql, video.id, "f", order=-3)
    expected = list("fdbce")
    await check()
    await gql.mutate(DELETE_FRAME, {"id": frames["e"]})
    expected = list("fdbc")
    await check()
    await gql.mutate(REORDER_FRAME, {"id": frames["f"], "newOrder": 2})
    expected = list("dbfc")
    await check()


# --- deleting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deleted", "expected"),
    [("a", ["b", "c", "d"]), ("b", ["a", "c", "d"]), ("d", ["a", "b", "c"])],
)
async def test_delete_frame_closes_the_gap(
    gql: GraphQLClient, deleted: str, expected: list[str]
) -> None:
    # given
    video = await seed_video(gql)
    frames = dict(zip("abcd", await create_frames(gql, video.id, list("abcd")), strict=True))

    # when
    payload = await gql.mutate(DELETE_FRAME, {"id": frames[deleted]})

    # then
    renumbered = [{"title": t, "order": i} for i, t in enumerate(expected)]
    assert payload["deletedId"] == frames[deleted]
    assert payload["deleted"] == {"videos": 0, "frames": 1, "messages": 0, "images": 0}
    assert payload["video"] == {"id": video.id, "frameCount": 3, "frames": renumbered}
    assert (await gql.data(FRAME, {"id": frames[deleted]}))["frame"] is None
    assert await frame_orders(gql, video.id) == [(t, i) for i, t in enumerate(expected)]


async def test_delete_frame_counts_its_messages_and_their_images(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a frame with three messages (three images) and an image it only shows
    video = await seed_video(gql)
    frame_id, other_frame = await create_frames(gql, video.id, ["doomed", "kept"])
    _, produced = await generate(seeds, frame_id, images=2)
    await generate(seeds, frame_id, images=1)
    await post_message(seeds, frame_id, "refused by the provider")
    _, elsewhere = await generate(seeds, video.main_chat_id)
    await copy_image(gql, elsewhere[0], frame_id)
    await copy_image(gql, produced[0], other_frame)
    await select_image(gql, other_frame, produced[0])

    # when
    payload = await gql.mutate(DELETE_FRAME, {"id": frame_id})

    # then
    assert payload["deleted"] == {"videos": 0, "frames": 1, "messages": 3, "images": 3}
    assert (await gql.data(IMAGE, {"id": produced[0]}))["image"] is None
    kept = (await gql.data(FRAME, {"id": other_frame}))["frame"]
    assert (kept["order"], kept["selectedImage"], kept["images"]["nodes"]) == (0, None, [])
    survivor = (await gql.data(IMAGE, {"id": elsewhere[0]}))["image"]
    assert survivor["appearsIn"] == [{"__typename": "MainChat", "id": video.main_chat_id}]


# --- selecting an image -----------------------------------------------------------------------


async def test_select_frame_image_selects_one_of_its_images(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    _, frame_id = await seed_frame(gql)
    _, images = await generate(seeds, frame_id, images=2)

    # when
    payload = await gql.mutate(SELECT_FRAME_IMAGE, {"frameId": frame_id, "imageId": images[1]})

    # then
    assert payload["frame"]["selectedImage"]["id"] == images[1]
    assert payload["frame"]["selectedImage"]["url"].startswith("https://")
    assert (await gql.data(FRAME, {"id": frame_id}))["frame"]["selectedImage"] == {"id": images[1]}


async def test_select_frame_image_replaces_the_selection(gql: GraphQLClient, seeds: Seeds) -> None:
    # given
    _, frame_id = await seed_frame(gql)
    _, images = await generate(seeds, frame_id, images=2)
    await select_image(gql, frame_id, images[0])

    # when
    await gql.mutate(SELECT_FRAME_IMAGE, {"frameId": frame_id, "imageId": images[1]})

    # then
    selected = (await gql.data(FRAME, {"id": frame_id}))["frame"]["selectedImage"]
    assert selected == {"id": images[1]}


async def test_an_image_copied_into_the_frame_can_be_selected(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video, frame_id = await seed_frame(gql)
    gallery_image = await add_image(seeds, video.project_id)
    await copy_image(gql, gallery_image, frame_id)

    # when
    payload = await gql.mutate(SELECT_FRAME_IMAGE, {"frameId": frame_id, "imageId": gallery_image})

    # then
    assert payload["frame"]["selectedImage"]["id"] == gallery_image


async def test_select_frame_image_with_null_clears_the_selection(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    _, frame_id = await seed_frame(gql)
    _, images = await generate(seeds, frame_id)
    await select_image(gql, frame_id, images[0])

    # when
    payload = await gql.mutate(SELECT_FRAME_IMAGE, {"frameId": frame_id, "imageId": None})

    # then
    assert payload["frame"]["selectedImage"] is None
    assert (await gql.data(FRAME, {"id": frame_id}))["frame"]["selectedImage"] is None
    assert (await gql.data(IMAGE, {"id": images[0]}))["image"] is not None


async def test_selecting_an_image_of_another_frame_is_refused(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a frame with a selection, and an image of the same video shown elsewhere
    video = await seed_video(gql)
    frame_id, other_frame = await create_frames(gql, video.id, ["a", "b"])
    _, mine = await generate(seeds, frame_id)
    _, theirs = await generate(seeds, other_frame)
    await select_image(gql, frame_id, mine[0])

    # when
    payload, error = await refused(
        gql, SELECT_FRAME_IMAGE, {"frameId": frame_id, "imageId": theirs[0]}
    )

    # then
    assert payload["frame"] is None
    assert (error["code"], error["field"]) == ("NOT_IN_PLACE", ["imageId"])
    assert error["message"]
    selected = (await gql.data(FRAME, {"id": frame_id}))["frame"]["selectedImage"]
    assert selected == {"id": mine[0]}


async def test_selecting_an_image_of_the_gallery_is_refused(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video, frame_id = await seed_frame(gql)
    gallery_image = await add_image(seeds, video.project_id)

    # when
    _, error = await refused(
        gql, SELECT_FRAME_IMAGE, {"frameId": frame_id, "imageId": gallery_image}
    )

    # then
    assert (error["code"], error["field"]) == ("NOT_IN_PLACE", ["imageId"])
