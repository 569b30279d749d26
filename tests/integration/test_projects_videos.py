"""Projects, videos, contexts and main chats: create, update, delete, over HTTP."""

from __future__ import annotations

from tests.support.clients import GraphQLClient
from tests.support.documents import (
    CREATE_MAIN_CHAT,
    CREATE_PROJECT,
    CREATE_VIDEO,
    DELETE_MAIN_CHAT,
    DELETE_PROJECT,
    DELETE_VIDEO,
    NODE,
    UPDATE_CONTEXT,
    UPDATE_MAIN_CHAT,
    UPDATE_PROJECT,
    UPDATE_VIDEO,
)
from tests.support.scenes import (
    copy_image,
    create_frame,
    create_frames,
    create_main_chat,
    create_project,
    create_video,
    ids,
    seed_video,
    select_image,
)
from tests.support.seeds import Seeds, add_image, generate, post_message

PROJECT = """
query Project($id: ID!) {
  project(id: $id) {
    id name videoCount imageCount galleryCount
    videos { totalCount nodes { id name } }
  }
}
"""

PROJECTS = """
query Projects {
  projects { totalCount nodes { id name } }
}
"""

VIDEO = """
query Video($id: ID!) {
  video(id: $id) {
    id name frameCount imageCount
    context { id content }
    mainChats { id name }
    frames { id }
  }
}
"""

CONTEXT = """
query Context($id: ID!) {
  context(id: $id) { id content }
}
"""

MAIN_CHAT = """
query MainChat($id: ID!) {
  mainChat(id: $id) { id name }
}
"""

IMAGE = """
query Image($id: ID!) {
  image(id: $id) { id appearsIn { __typename ... on Node { id } } }
}
"""

PROJECT_IMAGES = """
query Images($id: ID!) {
  project(id: $id) { imageCount images(first: 100) { nodes { id } } }
}
"""


# --- projects ---------------------------------------------------------------------------------


async def test_create_project_trims_the_name_and_starts_empty(gql: GraphQLClient) -> None:
    # given
    name = "  Summer trip \n"

    # when
    payload = await gql.mutate(CREATE_PROJECT, {"name": name})

    # then
    project = payload["project"]
    assert project["name"] == "Summer trip"
    assert (project["videoCount"], project["imageCount"], project["galleryCount"]) == (0, 0, 0)
    listed = (await gql.data(PROJECTS))["projects"]
    assert listed["totalCount"] == 1
    assert listed["nodes"] == [{"id": project["id"], "name": "Summer trip"}]


async def test_update_project_renames_with_the_name_trimmed(gql: GraphQLClient) -> None:
    # given
    project_id = await create_project(gql, "Old")

    # when
    payload = await gql.mutate(UPDATE_PROJECT, {"id": project_id, "name": "\t New name  "})

    # then
    assert payload["project"] == {"id": project_id, "name": "New name"}
    fetched = (await gql.data(PROJECT, {"id": project_id}))["project"]
    assert fetched["name"] == "New name"


async def test_delete_project_counts_everything_that_went_with_it(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a project with two videos, three frames, messages and images in every kind of place
    project_id = await create_project(gql, "Doomed")
    first = await create_video(gql, project_id, "First")
    second = await create_video(gql, project_id, "Second")
    frames = await create_frames(gql, first.id, ["a", "b"])
    await create_frame(gql, second.id, "c")
    _, frame_images = await generate(seeds, frames[0], images=2)  # 1 message, 2 images
    await generate(seeds, first.context_id)  # 1 message, 1 image
    await generate(seeds, second.main_chat_id, images=3)  # 1 message, 3 images
    await post_message(seeds, frames[1])  # 1 message, nothing produced
    await add_image(seeds, project_id)  # 1 upload to the gallery
    await add_image(seeds, frames[1])  # 1 upload to a frame
    await copy_image(gql, frame_images[0], project_id)  # still one image
    # and a project that must survive
    survivor = await seed_video(gql, "Survivor")
    survivor_frame = await create_frame(gql, survivor.id, "kept")
    _, kept_images = await generate(seeds, survivor_frame)

    # when
    payload = await gql.mutate(DELETE_PROJECT, {"id": project_id})

    # then
    assert payload["deletedId"] == project_id
    assert payload["deleted"] == {"videos": 2, "frames": 3, "messages": 4, "images": 8}
    assert (await gql.data(PROJECT, {"id": project_id}))["project"] is None
    for gone in [project_id, first.id, second.id, first.context_id, frames[0], *frame_images]:
        assert (await gql.data(NODE, {"id": gone}))["node"] is None
    listed = (await gql.data(PROJECTS))["projects"]
    assert listed["totalCount"] == 1
    assert ids(listed["nodes"]) == [survivor.project_id]
    kept = (await gql.data(IMAGE, {"id": kept_images[0]}))["image"]
    assert kept["appearsIn"] == [{"__typename": "Frame", "id": survivor_frame}]


async def test_delete_an_empty_project_counts_nothing(gql: GraphQLClient) -> None:
    # given
    project_id = await create_project(gql, "Empty")

    # when
    payload = await gql.mutate(DELETE_PROJECT, {"id": project_id})

    # then
    assert payload["deleted"] == {"videos": 0, "frames": 0, "messages": 0, "images": 0}
    assert (await gql.data(PROJECTS))["projects"]["totalCount"] == 0


# --- videos -----------------------------------------------------------------------------------


async def test_create_video_comes_with_a_context_and_a_main_chat(gql: GraphQLClient) -> None:
    # given
    project_id = await create_project(gql)

    # when
    payload = await gql.mutate(CREATE_VIDEO, {"projectId": project_id, "name": "  Opening  "})

    # then
    video = payload["video"]
    assert video["name"] == "Opening"
    assert video["project"] == {"id": project_id}
    assert (video["frameCount"], video["imageCount"], video["frames"]) == (0, 0, [])
    context = video["context"]
    assert context["content"] == ""
    assert context["video"] == {"id": video["id"]}
    assert (context["messageCount"], context["imageCount"]) == (0, 0)
    (main_chat,) = video["mainChats"]
    assert main_chat["name"] == "Main chat"
    assert main_chat["video"] == {"id": video["id"]}
    assert (main_chat["messageCount"], main_chat["imageCount"]) == (0, 0)
    project = (await gql.data(PROJECT, {"id": project_id}))["project"]
    assert project["videoCount"] == 1
    assert project["videos"] == {"totalCount": 1, "nodes": [{"id": video["id"], "name": "Opening"}]}


async def test_every_video_has_its_own_context_and_main_chat(gql: GraphQLClient) -> None:
    # given
    project_id = await create_project(gql)
    first = await create_video(gql, project_id, "First")

    # when
    second = await create_video(gql, project_id, "Second")

    # then
    assert second.context_id != first.context_id
    assert second.main_chat_id != first.main_chat_id
    fetched = (await gql.data(VIDEO, {"id": first.id}))["video"]
    assert fetched["context"]["id"] == first.context_id
    assert ids(fetched["mainChats"]) == [first.main_chat_id]


async def test_update_video_renames_with_the_name_trimmed(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql, "Draft")

    # when
    payload = await gql.mutate(UPDATE_VIDEO, {"id": video.id, "name": " Final cut "})

    # then
    assert payload["video"] == {"id": video.id, "name": "Final cut"}
    assert (await gql.data(VIDEO, {"id": video.id}))["video"]["name"] == "Final cut"


async def test_delete_video_counts_exactly_and_spares_its_siblings(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a video with frames, two main chats, messages and images
    project_id = await create_project(gql)
    doomed = await create_video(gql, project_id, "Doomed")
    sibling = await create_video(gql, project_id, "Sibling")
    frames = await create_frames(gql, doomed.id, ["a", "b", "c"])
    extra_chat = await create_main_chat(gql, doomed.id, "Extra")
    _, selected = await generate(seeds, frames[0], images=2)
    await select_image(gql, frames[0], selected[0])
    await generate(seeds, doomed.context_id)
    await generate(seeds, extra_chat, images=2)
    await add_image(seeds, frames[2])  # an upload to the video
    _, sibling_images = await generate(seeds, sibling.main_chat_id)
    gallery_image = await add_image(seeds, project_id)
    await copy_image(gql, gallery_image, frames[1])  # a gallery image shown in the video

    # when
    payload = await gql.mutate(DELETE_VIDEO, {"id": doomed.id})

    # then
    assert payload["deletedId"] == doomed.id
    assert payload["deleted"] == {"videos": 1, "frames": 3, "messages": 3, "images": 6}
    assert (await gql.data(VIDEO, {"id": doomed.id}))["video"] is None
    for gone in [doomed.context_id, doomed.main_chat_id, extra_chat, *frames, *selected]:
        assert (await gql.data(NODE, {"id": gone}))["node"] is None
    project = (await gql.data(PROJECT, {"id": project_id}))["project"]
    assert project["videoCount"] == 1
    assert ids(project["videos"]["nodes"]) == [sibling.id]
    images = (await gql.data(PROJECT_IMAGES, {"id": project_id}))["project"]
    assert images["imageCount"] == 2
    assert set(ids(images["images"]["nodes"])) == {sibling_images[0], gallery_image}
    survivor = (await gql.data(IMAGE, {"id": gallery_image}))["image"]
    assert survivor["appearsIn"] == [{"__typename": "Project", "id": project_id}]


# --- contexts ---------------------------------------------------------------------------------


async def test_update_context_sets_the_text_trimmed(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    payload = await gql.mutate(
        UPDATE_CONTEXT, {"id": video.context_id, "content": "  A rainy city.\nNeon.  "}
    )

    # then
    assert payload["context"] == {
        "id": video.context_id,
        "content": "A rainy city.\nNeon.",
        "video": {"id": video.id},
    }
    fetched = (await gql.data(VIDEO, {"id": video.id}))["video"]["context"]
    assert fetched["content"] == "A rainy city.\nNeon."


async def test_update_context_may_empty_the_text(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)
    await gql.mutate(UPDATE_CONTEXT, {"id": video.context_id, "content": "Something"})

    # when
    payload = await gql.mutate(UPDATE_CONTEXT, {"id": video.context_id, "content": "   "})

    # then
    assert payload["context"]["content"] == ""
    assert (await gql.data(CONTEXT, {"id": video.context_id}))["context"]["content"] == ""


# --- main chats -------------------------------------------------------------------------------


async def test_create_main_chat_adds_it_after_the_default_one(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    payload = await gql.mutate(CREATE_MAIN_CHAT, {"videoId": video.id, "name": "  Ideas  "})

    # then
    chat = payload["mainChat"]
    assert (chat["name"], chat["messageCount"], chat["video"]) == ("Ideas", 0, {"id": video.id})
    fetched = (await gql.data(VIDEO, {"id": video.id}))["video"]["mainChats"]
    assert fetched == [
        {"id": video.main_chat_id, "name": "Main chat"},
        {"id": chat["id"], "name": "Ideas"},
    ]


async def test_update_main_chat_renames_with_the_name_trimmed(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    payload = await gql.mutate(UPDATE_MAIN_CHAT, {"id": video.main_chat_id, "name": " Sketches "})

    # then
    assert payload["mainChat"] == {"id": video.main_chat_id, "name": "Sketches"}
    fetched = (await gql.data(MAIN_CHAT, {"id": video.main_chat_id}))["mainChat"]
    assert fetched["name"] == "Sketches"


async def test_delete_main_chat_counts_its_messages_and_their_images(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a main chat with two messages (three images), and an image only shown there
    video = await seed_video(gql)
    extra = await create_main_chat(gql, video.id, "Extra")
    await generate(seeds, extra, images=2)
    await generate(seeds, extra, images=1)
    _, kept = await generate(seeds, video.main_chat_id)
    await copy_image(gql, kept[0], extra)

    # when
    payload = await gql.mutate(DELETE_MAIN_CHAT, {"id": extra})

    # then
    assert payload["deletedId"] == extra
    assert payload["deleted"] == {"videos": 0, "frames": 0, "messages": 2, "images": 3}
    assert (await gql.data(MAIN_CHAT, {"id": extra}))["mainChat"] is None
    assert ids((await gql.data(VIDEO, {"id": video.id}))["video"]["mainChats"]) == [
        video.main_chat_id
    ]
    survivor = (await gql.data(IMAGE, {"id": kept[0]}))["image"]
    assert survivor["appearsIn"] == [{"__typename": "MainChat", "id": video.main_chat_id}]


async def test_the_default_main_chat_can_be_deleted(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    payload = await gql.mutate(DELETE_MAIN_CHAT, {"id": video.main_chat_id})

    # then
    assert payload["deleted"] == {"videos": 0, "frames": 0, "messages": 0, "images": 0}
    assert (await gql.data(VIDEO, {"id": video.id}))["video"]["mainChats"] == []
