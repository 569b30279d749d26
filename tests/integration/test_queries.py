"""Reading: connections (first/after/pageInfo/totalCount), node/nodes refetch, counts."""

from __future__ import annotations

from typing import Any

import pytest

from storyframe.schema.ids import encode_cursor
from storyframe.services.container import Services
from tests.support.clients import GraphQLClient
from tests.support.ids import unknown_id
from tests.support.scenes import (
    a_full_project,
    copy_image,
    create_frame,
    create_frames,
    create_main_chat,
    create_project,
    create_video,
    ids,
    seed_frame,
    seed_video,
)
from tests.support.seeds import Seeds, add_image, generate, post_message

PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"

PROJECTS = f"""
query Projects($first: Int, $after: String) {{
  projects(first: $first, after: $after) {{
    totalCount
    edges {{ cursor node {{ id name }} }}
    nodes {{ id name }}
    {PAGE_INFO}
  }}
}}
"""

PROJECTS_DEFAULT = f"""
query Projects {{
  projects {{ totalCount nodes {{ id }} {PAGE_INFO} }}
}}
"""

FRAME_MESSAGES = f"""
query Messages($id: ID!, $first: Int, $after: String) {{
  frame(id: $id) {{
    messages(first: $first, after: $after) {{
      totalCount
      edges {{ cursor node {{ id prompt }} }}
      {PAGE_INFO}
    }}
  }}
}}
"""

PROJECT_CONNECTIONS = f"""
query Connections($id: ID!, $first: Int, $after: String) {{
  project(id: $id) {{
    videos(first: $first, after: $after) {{ totalCount nodes {{ id }} {PAGE_INFO} }}
    gallery(first: $first, after: $after) {{ totalCount nodes {{ id }} {PAGE_INFO} }}
    images(first: $first, after: $after) {{ totalCount nodes {{ id }} {PAGE_INFO} }}
  }}
}}
"""

CONTEXT_IMAGES = f"""
query Images($id: ID!, $first: Int, $after: String) {{
  context(id: $id) {{
    images(first: $first, after: $after) {{ totalCount nodes {{ id }} {PAGE_INFO} }}
  }}
}}
"""

TWO_FRAMES = """
query TwoFrames($a: ID!, $b: ID!, $afterA: String, $afterB: String) {
  a: frame(id: $a) {
    messages(first: 2, after: $afterA) { totalCount nodes { id } pageInfo { endCursor } }
  }
  b: frame(id: $b) {
    messages(first: 2, after: $afterB) { totalCount nodes { id } pageInfo { endCursor } }
  }
}
"""

FRAMES_OF_VIDEO_PAGED = """
query Frames($id: ID!) {
  video(id: $id) {
    frames {
      id
      messages(first: 2) { totalCount nodes { id } pageInfo { hasNextPage } }
      images(first: 1) { totalCount nodes { id } }
    }
  }
}
"""

ALIASED_PAGES = """
query Aliased($id: ID!) {
  mainChat(id: $id) {
    newest: messages(first: 1) { nodes { id } pageInfo { hasNextPage } }
    all: messages(first: 100) { nodes { id } pageInfo { hasNextPage } }
    none: messages(first: 0) { totalCount nodes { id } pageInfo { hasNextPage startCursor } }
  }
}
"""

PROJECT_IMAGES_OF_VIDEO = """
query Images($id: ID!, $videoId: ID) {
  project(id: $id) { images(videoId: $videoId) { totalCount nodes { id } } }
}
"""

PROJECTS_IMAGES_OF_VIDEO = """
query Images($videoId: ID!) {
  projects { nodes { id images(videoId: $videoId) { totalCount nodes { id } } } }
}
"""

NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Project { name }
    ... on Video { name frames { id } }
    ... on Context { content video { id } }
    ... on Frame { title order }
    ... on MainChat { name }
    ... on Message { prompt chat { id } }
    ... on Image { url project { id } }
  }
}
"""

NODES = """
query Nodes($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename
    id
    ... on Frame { title }
    ... on Project { name videoCount }
  }
}
"""

COUNTS = """
query Counts {
  projects {
    nodes {
      id videoCount imageCount galleryCount
      videos {
        nodes {
          id frameCount imageCount
          context { messageCount imageCount }
          mainChats { messageCount imageCount }
          frames { messageCount imageCount }
        }
      }
    }
  }
}
"""

VIDEO_LISTS = """
query Video($id: ID!) {
  video(id: $id) { mainChats { id name } }
  project: node(id: $id) { ... on Video { project { videos { nodes { id } } } } }
}
"""

DELETE_PROJECT = """
mutation Delete($id: ID!) { deleteProject(input: {id: $id}) { userErrors { code } } }
"""

DELETE_FRAME = """
mutation Delete($id: ID!) { deleteFrame(input: {id: $id}) { userErrors { code } } }
"""


PAGE = f"totalCount nodes {{ id }} {PAGE_INFO}"
EVERY_CONNECTION = f"""
query Every($project: ID!, $frame: ID!, $context: ID!, $mainChat: ID!, $after: String) {{
  projects(first: 1, after: $after) {{ {PAGE} }}
  project(id: $project) {{
    videos(first: 1, after: $after) {{ {PAGE} }}
    gallery(first: 1, after: $after) {{ {PAGE} }}
    images(first: 1, after: $after) {{ {PAGE} }}
  }}
  frame(id: $frame) {{
    messages(first: 1, after: $after) {{ {PAGE} }}
    images(first: 1, after: $after) {{ {PAGE} }}
  }}
  context(id: $context) {{
    messages(first: 1, after: $after) {{ {PAGE} }}
    images(first: 1, after: $after) {{ {PAGE} }}
  }}
  mainChat(id: $mainChat) {{
    messages(first: 1, after: $after) {{ {PAGE} }}
    images(first: 1, after: $after) {{ {PAGE} }}
  }}
}}
"""


def _page(connection: dict[str, Any]) -> tuple[list[str], bool, bool]:
    """(names or ids, hasNextPage, hasPreviousPage) of a page."""
    info = connection["pageInfo"]
    nodes = connection.get("nodes") or [edge["node"] for edge in connection["edges"]]
    labels = [node.get("name", node["id"]) for node in nodes]
    return labels, info["hasNextPage"], info["hasPreviousPage"]


# --- paging through projects ------------------------------------------------------------------


async def test_projects_page_newest_first_with_cursors(
    gql: GraphQLClient, services: Services
) -> None:
    # given
    for name in ["p1", "p2", "p3", "p4", "p5"]:
        await services.projects.create(name)

    # when
    pages = []
    after = None
    while True:
        page = (await gql.data(PROJECTS, {"first": 2, "after": after}))["projects"]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    # then
    assert [_page(p) for p in pages] == [
        (["p5", "p4"], True, False),
        (["p3", "p2"], True, True),
        (["p1"], False, True),
    ]
    for page in pages:
        assert page["totalCount"] == 5
        assert [edge["node"] for edge in page["edges"]] == page["nodes"]
        cursors = [edge["cursor"] for edge in page["edges"]]
        assert page["pageInfo"]["startCursor"] == cursors[0]
        assert page["pageInfo"]["endCursor"] == cursors[-1]
        assert len(set(cursors)) == len(cursors)


async def test_projects_default_to_a_page_of_twenty(gql: GraphQLClient, services: Services) -> None:
    # given
    for number in range(25):
        await services.projects.create(f"p{number}")

    # when
    first = (await gql.data(PROJECTS_DEFAULT))["projects"]
    rest = (await gql.data(PROJECTS, {"after": first["pageInfo"]["endCursor"]}))["projects"]

    # then
    assert (len(first["nodes"]), first["totalCount"], first["pageInfo"]["hasNextPage"]) == (
        20,
        25,
        True,
    )
    assert [n["name"] for n in rest["nodes"]] == [f"p{n}" for n in range(4, -1, -1)]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_a_full_page_of_a_hundred(gql: GraphQLClient, services: Services) -> None:
    # given
    for number in range(101):
        await services.projects.create(f"p{number}")

    # when
    page = (await gql.data(PROJECTS, {"first": 100}))["projects"]

    # then
    assert len(page["nodes"]) == 100
    assert page["nodes"][-1]["name"] == "p1"
    assert (page["totalCount"], page["pageInfo"]["hasNextPage"]) == (101, True)


async def test_an_empty_first_page_still_counts(gql: GraphQLClient, services: Services) -> None:
    # given
    for name in ["a", "b"]:
        await services.projects.create(name)

    # when
    page = (await gql.data(PROJECTS, {"first": 0}))["projects"]

    # then
    assert (page["edges"], page["nodes"], page["totalCount"]) == ([], [], 2)
    assert page["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }


async def test_no_projects_is_an_empty_connection(gql: GraphQLClient) -> None:
    # when
    page = (await gql.data(PROJECTS, {"first": 10}))["projects"]

    # then
    assert page == {
        "totalCount": 0,
        "edges": [],
        "nodes": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


async def test_after_the_last_cursor_comes_an_empty_page(
    gql: GraphQLClient, services: Services
) -> None:
    # given
    await services.projects.create("only")
    first = (await gql.data(PROJECTS, {"first": 1}))["projects"]

    # when
    after = await gql.data(PROJECTS, {"first": 1, "after": first["pageInfo"]["endCursor"]})

    # then
    page = after["projects"]
    assert (page["nodes"], page["totalCount"]) == ([], 1)
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["hasPreviousPage"] is True
    assert page["pageInfo"]["endCursor"] is None


@pytest.mark.parametrize("pk", [2**31, 2**32, 10**18 - 1], ids=str)
async def test_a_cursor_beyond_every_id_starts_from_the_newest(
    gql: GraphQLClient, services: Services, seeds: Seeds, pk: int
) -> None:
    # given: something in every connection, and a cursor no row's id can reach
    owned = (await a_full_project(services, seeds, "Owned")).variables()
    from_the_start = await gql.data(EVERY_CONNECTION, owned)

    # when
    beyond = await gql.data(EVERY_CONNECTION, {**owned, "after": encode_cursor(pk)})

    # then: the first page of each, as without a cursor (no row comes before it)
    assert beyond == from_the_start
    assert from_the_start["frame"]["images"]["totalCount"] == 1


async def test_paging_is_stable_while_projects_come_and_go(
    gql: GraphQLClient, services: Services
) -> None:
    # given a first page read
    for name in ["p1", "p2", "p3", "p4"]:
        await services.projects.create(name)
    first = (await gql.data(PROJECTS, {"first": 2}))["projects"]

    # when a project is added and one of the first page is deleted
    await create_project(gql, "newer")
    doomed = first["nodes"][0]["id"]
    await gql.mutate(DELETE_PROJECT, {"id": doomed})
    second = await gql.data(PROJECTS, {"first": 2, "after": first["pageInfo"]["endCursor"]})

    # then the next page carries on where the first ended
    assert _page(second["projects"]) == (["p2", "p1"], False, True)
    assert second["projects"]["totalCount"] == 4


# --- paging nested connections ----------------------------------------------------------------


async def test_chat_messages_page_newest_first(gql: GraphQLClient, seeds: Seeds) -> None:
    # given
    _, frame_id = await seed_frame(gql)
    posted = [await post_message(seeds, frame_id, f"m{n}") for n in range(5)]

    # when
    first = (await gql.data(FRAME_MESSAGES, {"id": frame_id, "first": 3}))["frame"]["messages"]
    after = first["pageInfo"]["endCursor"]
    second = (await gql.data(FRAME_MESSAGES, {"id": frame_id, "first": 3, "after": after}))[
        "frame"
    ]["messages"]

    # then
    assert _page(first) == (list(reversed(posted))[:3], True, False)
    assert _page(second) == (list(reversed(posted))[3:], False, True)
    assert [e["node"]["prompt"] for e in first["edges"] + second["edges"]] == [
        "m4",
        "m3",
        "m2",
        "m1",
        "m0",
    ]
    assert first["totalCount"] == second["totalCount"] == 5


async def test_project_videos_gallery_and_images_page_newest_first(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given three videos, and three images in the gallery
    project_id = await create_project(gql)
    videos = [(await create_video(gql, project_id, f"v{n}")).id for n in range(3)]
    images = [await add_image(seeds, project_id) for _ in range(3)]

    # when
    first = (await gql.data(PROJECT_CONNECTIONS, {"id": project_id, "first": 2}))["project"]
    second = {}
    for key in ["videos", "gallery", "images"]:
        after = first[key]["pageInfo"]["endCursor"]
        variables = {"id": project_id, "first": 2, "after": after}
        second[key] = (await gql.data(PROJECT_CONNECTIONS, variables))["project"][key]

    # then
    for key, made in [("videos", videos), ("gallery", images), ("images", images)]:
        newest_first = list(reversed(made))
        assert _page(first[key]) == (newest_first[:2], True, False), key
        assert _page(second[key]) == (newest_first[2:], False, True), key
        assert first[key]["totalCount"] == second[key]["totalCount"] == 3


async def test_chat_images_page_newest_first(gql: GraphQLClient, seeds: Seeds) -> None:
    # given
    video = await seed_video(gql)
    _, images = await generate(seeds, video.context_id, images=4)

    # when
    first = (await gql.data(CONTEXT_IMAGES, {"id": video.context_id, "first": 3}))["context"]
    after = first["images"]["pageInfo"]["endCursor"]
    variables = {"id": video.context_id, "first": 3, "after": after}
    second = (await gql.data(CONTEXT_IMAGES, variables))["context"]

    # then
    assert _page(first["images"]) == (list(reversed(images))[:3], True, False)
    assert _page(second["images"]) == (images[:1], False, True)
    assert second["images"]["totalCount"] == 4


async def test_pages_of_several_parents_in_one_query_stay_apart(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given two frames with interleaved messages
    video = await seed_video(gql)
    a, b = await create_frames(gql, video.id, ["a", "b"])
    in_a: list[str] = []
    in_b: list[str] = []
    for _ in range(3):
        in_a.append(await post_message(seeds, a))
        in_b.append(await post_message(seeds, b))
    in_b.append(await post_message(seeds, b))

    # when
    first = await gql.data(TWO_FRAMES, {"a": a, "b": b})
    after_b = first["b"]["messages"]["pageInfo"]["endCursor"]
    second = await gql.data(TWO_FRAMES, {"a": a, "b": b, "afterB": after_b})

    # then
    assert ids(first["a"]["messages"]["nodes"]) == [in_a[2], in_a[1]]
    assert ids(first["b"]["messages"]["nodes"]) == [in_b[3], in_b[2]]
    assert (first["a"]["messages"]["totalCount"], first["b"]["messages"]["totalCount"]) == (3, 4)
    assert ids(second["a"]["messages"]["nodes"]) == [in_a[2], in_a[1]]
    assert ids(second["b"]["messages"]["nodes"]) == [in_b[1], in_b[0]]


async def test_a_list_of_frames_pages_each_frame_s_chat(gql: GraphQLClient, seeds: Seeds) -> None:
    # given frames with 3, 0 and 1 messages
    video = await seed_video(gql)
    frames = await create_frames(gql, video.id, ["a", "b", "c"])
    made: dict[str, list[str]] = {frame: [] for frame in frames}
    for frame, count in zip(frames, [3, 0, 1], strict=True):
        for _ in range(count):
            message_id, _images = await generate(seeds, frame, images=2)
            made[frame].append(message_id)

    # when
    listed = (await gql.data(FRAMES_OF_VIDEO_PAGED, {"id": video.id}))["video"]["frames"]

    # then
    assert [f["messages"]["totalCount"] for f in listed] == [3, 0, 1]
    assert [ids(f["messages"]["nodes"]) for f in listed] == [
        list(reversed(made[frames[0]]))[:2],
        [],
        made[frames[2]],
    ]
    assert [f["messages"]["pageInfo"]["hasNextPage"] for f in listed] == [True, False, False]
    assert [f["images"]["totalCount"] for f in listed] == [6, 0, 2]
    assert [len(f["images"]["nodes"]) for f in listed] == [1, 0, 1]


async def test_one_connection_asked_for_with_different_arguments(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video = await seed_video(gql)
    posted = [await post_message(seeds, video.main_chat_id) for _ in range(3)]

    # when
    chat = (await gql.data(ALIASED_PAGES, {"id": video.main_chat_id}))["mainChat"]

    # then
    assert (ids(chat["newest"]["nodes"]), chat["newest"]["pageInfo"]["hasNextPage"]) == (
        [posted[2]],
        True,
    )
    assert (ids(chat["all"]["nodes"]), chat["all"]["pageInfo"]["hasNextPage"]) == (
        list(reversed(posted)),
        False,
    )
    assert chat["none"] == {
        "totalCount": 3,
        "nodes": [],
        "pageInfo": {"hasNextPage": True, "startCursor": None},
    }


async def test_project_images_of_one_video(gql: GraphQLClient, seeds: Seeds) -> None:
    # given images made in two videos and one uploaded to the gallery
    project_id = await create_project(gql)
    first = await create_video(gql, project_id, "first")
    second = await create_video(gql, project_id, "second")
    _, in_first = await generate(seeds, first.main_chat_id, images=2)
    _, in_second = await generate(seeds, second.context_id)
    in_gallery = await add_image(seeds, project_id)
    await copy_image(gql, in_first[0], second.context_id)  # shown in, not made in, the second

    # when
    everything = await gql.data(PROJECT_IMAGES_OF_VIDEO, {"id": project_id})
    of_first = await gql.data(PROJECT_IMAGES_OF_VIDEO, {"id": project_id, "videoId": first.id})
    of_second = await gql.data(PROJECT_IMAGES_OF_VIDEO, {"id": project_id, "videoId": second.id})
    elsewhere = await seed_video(gql, "Elsewhere")
    of_foreign = await gql.data(
        PROJECT_IMAGES_OF_VIDEO, {"id": project_id, "videoId": elsewhere.id}
    )

    # then
    assert everything["project"]["images"] == {
        "totalCount": 4,
        "nodes": [{"id": i} for i in [in_gallery, *in_second, *reversed(in_first)]],
    }
    assert of_first["project"]["images"] == {
        "totalCount": 2,
        "nodes": [{"id": i} for i in reversed(in_first)],
    }
    assert of_second["project"]["images"] == {"totalCount": 1, "nodes": [{"id": in_second[0]}]}
    assert of_foreign["project"]["images"] == {"totalCount": 0, "nodes": []}


async def test_project_images_of_an_empty_video_id_is_refused(gql: GraphQLClient) -> None:
    # given
    project_id = await create_project(gql)

    # when
    body = await gql.execute(PROJECT_IMAGES_OF_VIDEO, {"id": project_id, "videoId": ""})

    # then: an empty ID is not "no filter"
    assert body["data"]["project"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID_ID"
    assert error["path"] == ["project", "images"]


async def test_several_projects_asking_for_the_images_of_one_video(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given two projects, and images made in a video of the second
    first = await seed_video(gql, "First")
    second = await seed_video(gql, "Second")
    _, made = await generate(seeds, second.main_chat_id, images=2)

    # when every project lists the images of that video, in one batch
    data = await gql.data(PROJECTS_IMAGES_OF_VIDEO, {"videoId": second.id})

    # then only its own project has them, and lists what it counts
    by_id = {project["id"]: project["images"] for project in data["projects"]["nodes"]}
    assert by_id[second.project_id] == {
        "totalCount": 2,
        "nodes": [{"id": i} for i in reversed(made)],
    }
    assert by_id[first.project_id] == {"totalCount": 0, "nodes": []}


# --- refetching -------------------------------------------------------------------------------


async def test_node_refetches_every_kind_of_object(gql: GraphQLClient, seeds: Seeds) -> None:
    # given
    video = await seed_video(gql, "Clip")
    frame_id = await create_frame(gql, video.id, "Opening")
    message_id, (image_id,) = await generate(seeds, frame_id, "a prompt")
    expected: dict[str, dict[str, Any]] = {
        video.project_id: {"__typename": "Project", "name": "Clip project"},
        video.id: {"__typename": "Video", "name": "Clip", "frames": [{"id": frame_id}]},
        video.context_id: {"__typename": "Context", "content": "", "video": {"id": video.id}},
        frame_id: {"__typename": "Frame", "title": "Opening", "order": 0},
        video.main_chat_id: {"__typename": "MainChat", "name": "Main chat"},
        message_id: {"__typename": "Message", "prompt": "a prompt", "chat": {"id": frame_id}},
        image_id: {"__typename": "Image", "project": {"id": video.project_id}},
    }

    # when
    found = {node_id: (await gql.data(NODE, {"id": node_id}))["node"] for node_id in expected}

    # then
    for node_id, fields in expected.items():
        node = found[node_id]
        assert node["id"] == node_id
        assert {k: node[k] for k in fields} == fields
    assert found[image_id]["url"].startswith("https://")


@pytest.mark.parametrize("type_name", ["Project", "Video", "Frame", "Message", "Image", "Nope"])
async def test_node_of_something_that_is_not_there_is_null(
    gql: GraphQLClient, type_name: str
) -> None:
    # given
    await seed_video(gql)

    # when
    body = await gql.execute(NODE, {"id": unknown_id(type_name)})

    # then
    assert body == {"data": {"node": None}}


async def test_nodes_answers_in_order_with_nulls_where_there_is_nothing(
    gql: GraphQLClient,
) -> None:
    # given
    video, frame_id = await seed_frame(gql, "Scene")
    asked = [frame_id, unknown_id("Frame"), video.project_id, frame_id, unknown_id("Nope")]

    # when
    nodes = (await gql.data(NODES, {"ids": asked}))["nodes"]

    # then
    assert nodes == [
        {"__typename": "Frame", "id": frame_id, "title": "Scene"},
        None,
        {
            "__typename": "Project",
            "id": video.project_id,
            "name": "Video project",
            "videoCount": 1,
        },
        {"__typename": "Frame", "id": frame_id, "title": "Scene"},
        None,
    ]


async def test_nodes_of_nothing_is_an_empty_list(gql: GraphQLClient) -> None:
    # when
    data = await gql.data(NODES, {"ids": []})

    # then
    assert data == {"nodes": []}


async def test_a_deleted_object_refetches_as_null(gql: GraphQLClient) -> None:
    # given
    video, frame_id = await seed_frame(gql)
    await gql.mutate(DELETE_FRAME, {"id": frame_id})

    # when
    data = await gql.data(NODES, {"ids": [frame_id, video.id]})

    # then
    assert data["nodes"][0] is None
    assert data["nodes"][1]["id"] == video.id


# --- lists and counts -------------------------------------------------------------------------


async def test_main_chats_oldest_first_and_videos_newest_first(gql: GraphQLClient) -> None:
    # given
    project_id = await create_project(gql)
    older = await create_video(gql, project_id, "older")
    newer = await create_video(gql, project_id, "newer")
    chats = [await create_main_chat(gql, newer.id, name) for name in ["b", "a"]]

    # when
    data = await gql.data(VIDEO_LISTS, {"id": newer.id})

    # then
    assert data["video"]["mainChats"] == [
        {"id": newer.main_chat_id, "name": "Main chat"},
        {"id": chats[0], "name": "b"},
        {"id": chats[1], "name": "a"},
    ]
    assert ids(data["project"]["project"]["videos"]["nodes"]) == [newer.id, older.id]


async def test_counts_of_every_level_are_exact_and_kept_apart(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a busy project and a quiet one
    busy = await create_project(gql, "busy")
    quiet = await create_project(gql, "quiet")
    video = await create_video(gql, busy, "busy video")
    other = await create_video(gql, busy, "other video")
    await create_video(gql, quiet, "quiet video")
    frames = await create_frames(gql, video.id, ["a", "b", "c"])
    _, made = await generate(seeds, frames[0], images=2)
    await generate(seeds, frames[0], images=1)
    await post_message(seeds, frames[1])
    await generate(seeds, video.context_id, images=1)
    await generate(seeds, other.main_chat_id, images=4)
    gallery = await add_image(seeds, busy)
    await copy_image(gql, gallery, frames[2])
    await copy_image(gql, made[0], busy)

    # when
    projects = (await gql.data(COUNTS))["projects"]["nodes"]

    # then
    by_id = {project["id"]: project for project in projects}
    q = by_id[quiet]
    assert (q["videoCount"], q["imageCount"], q["galleryCount"]) == (1, 0, 0)
    (quiet_video,) = q["videos"]["nodes"]
    assert (quiet_video["frameCount"], quiet_video["imageCount"]) == (0, 0)
    b = by_id[busy]
    assert (b["videoCount"], b["imageCount"], b["galleryCount"]) == (2, 9, 2)
    videos = {v["id"]: v for v in b["videos"]["nodes"]}
    busy_video = videos[video.id]
    assert (busy_video["frameCount"], busy_video["imageCount"]) == (3, 4)
    assert busy_video["context"] == {"messageCount": 1, "imageCount": 1}
    assert busy_video["mainChats"] == [{"messageCount": 0, "imageCount": 0}]
    assert busy_video["frames"] == [
        {"messageCount": 2, "imageCount": 3},
        {"messageCount": 1, "imageCount": 0},
        {"messageCount": 0, "imageCount": 1},
    ]
    other_video = videos[other.id]
    assert (other_video["frameCount"], other_video["imageCount"]) == (0, 4)
    assert other_video["mainChats"] == [{"messageCount": 1, "imageCount": 4}]
