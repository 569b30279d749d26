"""Chats (frames, contexts, main chats): their messages, and clearing their histories."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.clients import GraphQLClient
from tests.support.documents import (
    CLEAR_CONTEXT_HISTORY,
    CLEAR_FRAME_HISTORY,
    CLEAR_MAIN_CHAT_HISTORY,
    DELETE_IMAGE,
    UPDATE_CONTEXT,
)
from tests.support.scenes import (
    copy_image,
    create_frame,
    create_frames,
    ids,
    seed_frame,
    seed_video,
    select_image,
)
from tests.support.seeds import Seeds, add_image, generate, post_message

CHAT = """
fragment ChatParts on Chat {
  id messageCount imageCount
  video { id }
  messages {
    totalCount
    edges { cursor node { id } }
    nodes {
      id prompt withContext finalPrompt createdAt
      images { id }
      attachedImages { id }
      chat { __typename id }
    }
  }
  images { totalCount nodes { id } }
}

query Chats($frame: ID!, $context: ID!, $mainChat: ID!) {
  frame(id: $frame) { ...ChatParts }
  context(id: $context) { ...ChatParts }
  mainChat(id: $mainChat) { ...ChatParts }
}
"""

MESSAGE = """
query Message($id: ID!) {
  node(id: $id) {
    __typename
    ... on Message {
      id prompt withContext
      images { id url message { id } }
      attachedImages { id }
      chat { __typename id messageCount }
    }
  }
}
"""

IMAGE = """
query Image($id: ID!) {
  image(id: $id) { id message { id } appearsIn { __typename ... on Node { id } } }
}
"""

PROJECT = """
query Project($id: ID!) {
  project(id: $id) { imageCount galleryCount gallery { nodes { id } } }
}
"""

FRAME = """
query Frame($id: ID!) {
  frame(id: $id) { id selectedImage { id } }
}
"""

NO_COUNTS = {"videos": 0, "frames": 0, "messages": 0, "images": 0}


async def _chats(gql: GraphQLClient, frame: str, context: str, main_chat: str) -> dict[str, Any]:
    return await gql.data(CHAT, {"frame": frame, "context": context, "mainChat": main_chat})


# --- clearing histories -----------------------------------------------------------------------


async def test_clear_frame_history_deletes_its_messages_images_and_selection(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a frame with two messages and three images, one selected and one also in the gallery
    video = await seed_video(gql)
    frame_id, other_frame = await create_frames(gql, video.id, ["cleared", "other"])
    _, first = await generate(seeds, frame_id, images=2)
    _, second = await generate(seeds, frame_id, images=1)
    await select_image(gql, frame_id, first[1])
    await copy_image(gql, second[0], video.project_id)
    # and images that were not made there: shown in the frame, or made in another frame
    _, shown = await generate(seeds, video.main_chat_id)
    await copy_image(gql, shown[0], frame_id)
    _, others = await generate(seeds, other_frame)
    # and a message that attached an image of the gallery as a reference
    reference = await add_image(seeds, video.project_id)
    await post_message(seeds, frame_id, attached_image_ids=[reference])

    # when
    payload = await gql.mutate(CLEAR_FRAME_HISTORY, {"id": frame_id})

    # then
    assert payload["deleted"] == {"videos": 0, "frames": 0, "messages": 3, "images": 3}
    frame = payload["frame"]
    assert (frame["id"], frame["messageCount"], frame["imageCount"]) == (frame_id, 0, 1)
    assert frame["selectedImage"] is None
    assert ids(frame["images"]["nodes"]) == shown
    for gone in [*first, *second]:
        assert (await gql.data(IMAGE, {"id": gone}))["image"] is None
    project = (await gql.data(PROJECT, {"id": video.project_id}))["project"]
    assert (project["imageCount"], project["galleryCount"]) == (3, 1)
    assert ids(project["gallery"]["nodes"]) == [reference]
    survivor = (await gql.data(IMAGE, {"id": others[0]}))["image"]
    assert survivor["appearsIn"] == [{"__typename": "Frame", "id": other_frame}]
    chats = await _chats(gql, other_frame, video.context_id, video.main_chat_id)
    assert chats["frame"]["messageCount"] == 1
    assert chats["mainChat"]["messageCount"] == 1


async def test_clear_frame_history_unselects_an_image_it_did_not_make(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a frame whose selected image was copied in from the gallery
    video, frame_id = await seed_frame(gql)
    gallery_image = await add_image(seeds, video.project_id)
    await copy_image(gql, gallery_image, frame_id)
    await select_image(gql, frame_id, gallery_image)

    # when
    payload = await gql.mutate(CLEAR_FRAME_HISTORY, {"id": frame_id})

    # then
    assert payload["deleted"] == NO_COUNTS
    assert payload["frame"]["selectedImage"] is None
    assert ids(payload["frame"]["images"]["nodes"]) == [gallery_image]


async def test_clear_context_history_deletes_its_messages_and_their_images(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a context with text, two messages and their images, and a reference image
    video = await seed_video(gql)
    await gql.data(UPDATE_CONTEXT, {"id": video.context_id, "content": "Noir, rain"})
    await generate(seeds, video.context_id, images=2)
    await post_message(seeds, video.context_id, "failed")
    reference = await add_image(seeds, video.context_id)
    frame_id = await create_frame(gql, video.id)
    _, kept = await generate(seeds, frame_id)

    # when
    payload = await gql.mutate(CLEAR_CONTEXT_HISTORY, {"id": video.context_id})

    # then
    assert payload["deleted"] == {"videos": 0, "frames": 0, "messages": 2, "images": 2}
    context = payload["context"]
    assert context["content"] == "Noir, rain"
    assert (context["messageCount"], context["imageCount"]) == (0, 1)
    assert ids(context["images"]["nodes"]) == [reference]
    chats = await _chats(gql, frame_id, video.context_id, video.main_chat_id)
    assert ids(chats["frame"]["images"]["nodes"]) == kept
    assert chats["frame"]["messageCount"] == 1


async def test_clear_main_chat_history_deletes_its_messages_and_their_images(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a main chat with two messages, one image of which was copied into a frame
    video, frame_id = await seed_frame(gql)
    _, made = await generate(seeds, video.main_chat_id, images=2)
    await generate(seeds, video.main_chat_id, images=1)
    await copy_image(gql, made[0], frame_id)
    await select_image(gql, frame_id, made[0])
    _, in_context = await generate(seeds, video.context_id)

    # when
    payload = await gql.mutate(CLEAR_MAIN_CHAT_HISTORY, {"id": video.main_chat_id})

    # then
    assert payload["deleted"] == {"videos": 0, "frames": 0, "messages": 2, "images": 3}
    chat = payload["mainChat"]
    assert (chat["name"], chat["messageCount"], chat["imageCount"]) == ("Main chat", 0, 0)
    chats = await _chats(gql, frame_id, video.context_id, video.main_chat_id)
    assert chats["frame"]["images"] == {"totalCount": 0, "nodes": []}
    assert ids(chats["context"]["images"]["nodes"]) == in_context
    assert (await gql.data(FRAME, {"id": frame_id}))["frame"]["selectedImage"] is None


@pytest.mark.parametrize(
    ("document", "chat"),
    [
        (CLEAR_FRAME_HISTORY, "frame"),
        (CLEAR_CONTEXT_HISTORY, "context"),
        (CLEAR_MAIN_CHAT_HISTORY, "main chat"),
    ],
)
async def test_clearing_an_empty_history_counts_nothing(
    gql: GraphQLClient, document: str, chat: str
) -> None:
    # given
    video, frame_id = await seed_frame(gql)
    chat_id = {"frame": frame_id, "context": video.context_id, "main chat": video.main_chat_id}

    # when
    payload = await gql.mutate(document, {"id": chat_id[chat]})

    # then
    assert payload["deleted"] == NO_COUNTS


async def test_clearing_one_video_s_chat_leaves_another_video_alone(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given
    video = await seed_video(gql, "Cleared")
    other = await seed_video(gql, "Other")
    await generate(seeds, video.context_id)
    await generate(seeds, other.context_id, images=2)

    # when
    payload = await gql.mutate(CLEAR_CONTEXT_HISTORY, {"id": video.context_id})

    # then
    assert payload["deleted"] == {"videos": 0, "frames": 0, "messages": 1, "images": 1}
    other_frame = await create_frame(gql, other.id)
    chats = await _chats(gql, other_frame, other.context_id, other.main_chat_id)
    assert (chats["context"]["messageCount"], chats["context"]["imageCount"]) == (1, 2)


# --- messages ---------------------------------------------------------------------------------


async def test_chat_messages_are_listed_newest_first(gql: GraphQLClient, seeds: Seeds) -> None:
    # given
    video, frame_id = await seed_frame(gql)
    prompts = ["first", "second", "third"]
    posted = [await post_message(seeds, frame_id, prompt) for prompt in prompts]

    # when
    chats = await _chats(gql, frame_id, video.context_id, video.main_chat_id)

    # then
    messages = chats["frame"]["messages"]
    assert messages["totalCount"] == 3
    assert ids(messages["nodes"]) == list(reversed(posted))
    assert [m["prompt"] for m in messages["nodes"]] == ["third", "second", "first"]
    assert [edge["node"]["id"] for edge in messages["edges"]] == list(reversed(posted))
    assert chats["frame"]["messageCount"] == 3
    assert chats["context"]["messages"]["nodes"] == []


async def test_a_message_shows_its_prompt_images_attachments_and_chat(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given references in the context and the gallery, and a frame message attaching both
    video, frame_id = await seed_frame(gql)
    reference = await add_image(seeds, video.context_id)
    gallery_image = await add_image(seeds, video.project_id)
    message_id = await post_message(
        seeds,
        frame_id,
        "  a lighthouse at dusk  ",
        with_context=True,
        attached_image_ids=[gallery_image, reference, gallery_image],
    )
    made = [await add_image(seeds, frame_id, message_id=message_id) for _ in range(3)]

    # when
    data = await gql.data(MESSAGE, {"id": message_id})

    # then
    message = data["node"]
    assert message["__typename"] == "Message"
    assert (message["id"], message["prompt"]) == (message_id, "a lighthouse at dusk")
    assert message["withContext"] is True
    assert ids(message["images"]) == made
    assert all(image["message"] == {"id": message_id} for image in message["images"])
    assert ids(message["attachedImages"]) == [gallery_image, reference]
    assert message["chat"] == {"__typename": "Frame", "id": frame_id, "messageCount": 1}


async def test_every_kind_of_chat_lists_its_messages_and_images(
    gql: GraphQLClient, seeds: Seeds
) -> None:
    # given a message with images in each kind of chat
    video, frame_id = await seed_frame(gql)
    in_frame = await generate(seeds, frame_id, "frame prompt", images=1)
    in_context = await generate(seeds, video.context_id, "context prompt", images=2)
    in_main_chat = await generate(seeds, video.main_chat_id, "main prompt", images=3)

    # when
    chats = await _chats(gql, frame_id, video.context_id, video.main_chat_id)

    # then
    expected = {
        "frame": ("Frame", frame_id, in_frame),
        "context": ("Context", video.context_id, in_context),
        "mainChat": ("MainChat", video.main_chat_id, in_main_chat),
    }
    for key, (typename, chat_id, (message_id, images)) in expected.items():
        chat = chats[key]
        assert (chat["id"], chat["video"]) == (chat_id, {"id": video.id})
        assert (chat["messageCount"], chat["imageCount"]) == (1, len(images))
        (message,) = chat["messages"]["nodes"]
        assert message["id"] == message_id
        assert message["chat"] == {"__typename": typename, "id": chat_id}
        assert ids(message["images"]) == images
        assert message["finalPrompt"] is None
        assert chat["images"]["totalCount"] == len(images)
        assert ids(chat["images"]["nodes"]) == list(reversed(images))


async def test_with_context_is_kept_only_for_frames(gql: GraphQLClient, seeds: Seeds) -> None:
    # given
    video, frame_id = await seed_frame(gql)

    # when
    with_ = await post_message(seeds, frame_id, "with", with_context=True)
    without = await post_message(seeds, frame_id, "without", with_context=False)
    in_context = await post_message(seeds, video.context_id, "c", with_context=True)
    in_main_chat = await post_message(seeds, video.main_chat_id, "m", with_context=True)

    # then
    flags = {}
    for message_id in [with_, without, in_context, in_main_chat]:
        flags[message_id] = (await gql.data(MESSAGE, {"id": message_id}))["node"]["withContext"]
    assert flags == {with_: True, without: False, in_context: False, in_main_chat: False}


async def test_a_deleted_image_leaves_its_message_s_lists(gql: GraphQLClient, seeds: Seeds) -> None:
    # given a message that produced two images and attached a third
    video = await seed_video(gql)
    reference = await add_image(seeds, video.context_id)
    message_id = await post_message(seeds, video.main_chat_id, "p", attached_image_ids=[reference])
    made = [await add_image(seeds, video.main_chat_id, message_id=message_id) for _ in "ab"]

    # when
    for image_id in [made[0], reference]:
        await gql.mutate(DELETE_IMAGE, {"id": image_id})

    # then
    message = (await gql.data(MESSAGE, {"id": message_id}))["node"]
    assert ids(message["images"]) == [made[1]]
    assert message["attachedImages"] == []
