"""ContextService, MainChatService and ChatService against the fake unit of work."""

from __future__ import annotations

import pytest

from storyframe.db.tables import (
    CONTENT_MAX,
    NAME_MAX,
    PROMPT_MAX,
    Context,
    Frame,
    Image,
    MainChat,
    Message,
)
from storyframe.domain.errors import DomainError, ErrorCode, NotFound
from storyframe.domain.places import Place, PlaceKind
from storyframe.services.chats import MAX_ATTACHMENTS
from storyframe.services.deletion import Deleted
from tests.support.builders import (
    VideoScene,
    a_frame,
    a_generation,
    a_message,
    a_video,
    an_image,
    domain,
    message_ids,
)
from tests.support.ids import known

# ContextService.update


async def test_update_context_stores_the_trimmed_content() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    context = await d.contexts.update(scene.context.id, "  A rainy harbour at dusk.\n")

    # then
    assert context.content == "A rainy harbour at dusk."
    stored = d.uow.get(Context, scene.context.id)
    assert stored is not None
    assert stored.content == "A rainy harbour at dusk."


async def test_update_context_to_blank_empties_it() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    await d.contexts.update(scene.context.id, "Harbour")

    # when
    context = await d.contexts.update(scene.context.id, "  ")

    # then
    assert context.content == ""


async def test_update_context_accepts_content_of_the_maximum_length() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    context = await d.contexts.update(scene.context.id, "c" * CONTENT_MAX)

    # then
    assert len(context.content) == CONTENT_MAX


async def test_update_context_refuses_content_too_long() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    await d.contexts.update(scene.context.id, "Harbour")

    # when
    with pytest.raises(DomainError) as raised:
        await d.contexts.update(scene.context.id, "c" * (CONTENT_MAX + 1))

    # then
    assert raised.value.code is ErrorCode.TOO_LONG
    assert raised.value.field == ["content"]
    stored = d.uow.get(Context, scene.context.id)
    assert stored is not None
    assert stored.content == "Harbour"


# MainChatService


async def test_create_main_chat_in_a_video() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    chat = await d.main_chats.create(scene.video_id, "  Ideas ")

    # then
    assert chat.name == "Ideas"
    assert chat.video_id == scene.video_id
    assert sorted(c.name for c in d.uow.all(MainChat)) == ["Ideas", "Main chat"]


@pytest.mark.parametrize(
    ("name", "code"), [(" ", ErrorCode.BLANK), ("m" * (NAME_MAX + 1), ErrorCode.TOO_LONG)]
)
async def test_create_main_chat_refuses_an_invalid_name(name: str, code: ErrorCode) -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    with pytest.raises(DomainError) as raised:
        await d.main_chats.create(scene.video_id, name)

    # then
    assert raised.value.code is code
    assert raised.value.field == ["name"]
    assert [c.name for c in d.uow.all(MainChat)] == ["Main chat"]


async def test_rename_main_chat() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    chat = await d.main_chats.rename(scene.main_chat.id, "Storyboard")

    # then
    assert chat.name == "Storyboard"
    assert [c.name for c in d.uow.all(MainChat)] == ["Storyboard"]


@pytest.mark.parametrize(
    ("name", "code"), [("", ErrorCode.BLANK), ("m" * (NAME_MAX + 1), ErrorCode.TOO_LONG)]
)
async def test_rename_main_chat_refuses_an_invalid_name(name: str, code: ErrorCode) -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    with pytest.raises(DomainError) as raised:
        await d.main_chats.rename(scene.main_chat.id, name)

    # then
    assert raised.value.code is code
    assert raised.value.field == ["name"]
    assert [c.name for c in d.uow.all(MainChat)] == ["Main chat"]


async def test_delete_main_chat_takes_its_messages_and_their_images() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    await a_generation(d, scene.main_chat, images=2)
    await a_message(d, scene.main_chat)
    uploaded = await an_image(d, scene.main_chat)
    _, (kept,) = await a_generation(d, scene.context)

    # when
    deleted = await d.main_chats.delete(scene.main_chat.id)

    # then
    assert deleted == Deleted(messages=2, images=2)
    assert d.uow.all(MainChat) == []
    assert [m.context_id for m in d.uow.all(Message)] == [scene.context.id]
    assert {known(i.id) for i in d.uow.all(Image)} == {uploaded, kept}
    assert d.uow.places_of(uploaded) == set()


# ChatService.post_message


def chats_of(scene: VideoScene, frame: Place) -> list[Place]:
    return [frame, scene.context, scene.main_chat]


@pytest.mark.parametrize("kind", [PlaceKind.FRAME, PlaceKind.CONTEXT, PlaceKind.MAIN_CHAT])
async def test_post_message_records_the_prompt_in_the_chat(kind: PlaceKind) -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    chat = next(c for c in chats_of(scene, frame) if c.kind is kind)

    # when
    message = await d.seeds.post_message(chat, "  a lighthouse in fog  ")

    # then
    assert message.prompt == "a lighthouse in fog"
    assert message.video_id == scene.video_id
    in_chat = {
        PlaceKind.FRAME: message.frame_id,
        PlaceKind.CONTEXT: message.context_id,
        PlaceKind.MAIN_CHAT: message.main_chat_id,
    }
    assert in_chat.pop(kind) == chat.id
    assert set(in_chat.values()) == {None}
    assert message_ids(d) == {known(message.id)}
    assert d.uow.attachments_of(known(message.id)) == []


@pytest.mark.parametrize(
    ("kind", "kept"),
    [(PlaceKind.FRAME, True), (PlaceKind.CONTEXT, False), (PlaceKind.MAIN_CHAT, False)],
)
async def test_post_message_keeps_with_context_only_for_frames(kind: PlaceKind, kept: bool) -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    chat = next(c for c in chats_of(scene, frame) if c.kind is kind)

    # when
    message = await d.seeds.post_message(chat, "a lighthouse", with_context=True)

    # then
    assert message.with_context is kept
    stored = d.uow.get(Message, known(message.id))
    assert stored is not None
    assert stored.with_context is kept


async def test_post_message_without_context_in_a_frame() -> None:
    # given
    d = domain()
    frame = await a_frame(d, (await a_video(d)).video_id)

    # when
    message = await d.seeds.post_message(frame, "a lighthouse")

    # then
    assert message.with_context is False


async def test_post_message_attaches_images_of_the_project_in_order_once_each() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    other_video = await a_video(d, scene.project_id, "Other")
    frame = await a_frame(d, scene.video_id)
    in_frame = await an_image(d, frame)
    in_gallery = await an_image(d, scene.gallery)
    in_other_video = await an_image(d, other_video.main_chat)

    # when
    message = await d.seeds.post_message(
        frame, "like these", attached_image_ids=[in_gallery, in_frame, in_gallery, in_other_video]
    )

    # then
    assert d.uow.attachments_of(known(message.id)) == [in_gallery, in_frame, in_other_video]


async def test_post_message_refuses_an_image_of_another_project() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    elsewhere = await a_video(d)
    mine = await an_image(d, scene.gallery)
    theirs = await an_image(d, elsewhere.gallery)
    before = d.uow.snapshot()

    # when
    with pytest.raises(NotFound) as raised:
        await d.seeds.post_message(scene.main_chat, "like these", attached_image_ids=[mine, theirs])

    # then
    assert raised.value.field == ["contextImageIds"]
    assert d.uow.snapshot() == before


async def test_post_message_refuses_an_unknown_image() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    with pytest.raises(NotFound) as raised:
        await d.seeds.post_message(scene.context, "like this", attached_image_ids=[404])

    # then
    assert raised.value.field == ["contextImageIds"]
    assert message_ids(d) == set()


async def test_post_message_accepts_the_maximum_number_of_attachments() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    images = [await an_image(d, scene.gallery) for _ in range(MAX_ATTACHMENTS)]

    # when
    message = await d.seeds.post_message(scene.main_chat, "all", attached_image_ids=images)

    # then
    assert d.uow.attachments_of(known(message.id)) == images


async def test_post_message_refuses_too_many_attachments() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    images = [await an_image(d, scene.gallery) for _ in range(MAX_ATTACHMENTS + 1)]

    # when
    with pytest.raises(DomainError) as raised:
        await d.seeds.post_message(scene.main_chat, "all", attached_image_ids=images)

    # then
    assert raised.value.code is ErrorCode.INVALID
    assert raised.value.field == ["contextImageIds"]
    assert message_ids(d) == set()


@pytest.mark.parametrize(
    ("prompt", "code"), [(" \n ", ErrorCode.BLANK), ("p" * (PROMPT_MAX + 1), ErrorCode.TOO_LONG)]
)
async def test_post_message_refuses_an_invalid_prompt(prompt: str, code: ErrorCode) -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    with pytest.raises(DomainError) as raised:
        await d.seeds.post_message(scene.main_chat, prompt)

    # then
    assert raised.value.code is code
    assert raised.value.field == ["prompt"]
    assert message_ids(d) == set()


async def test_post_message_in_a_gallery_is_refused() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    with pytest.raises(NotFound) as raised:
        await d.seeds.post_message(scene.gallery, "a lighthouse")

    # then
    assert raised.value.field == ["galleryId"]
    assert message_ids(d) == set()


# ChatService.clear_history


async def test_clear_frame_history_takes_messages_images_and_the_selection() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    _, (first, second) = await a_generation(d, frame, images=2)
    await a_message(d, frame)
    await d.frames.select_image(frame.id, first)

    # when
    deleted = await d.chats.clear_history(frame)

    # then
    assert deleted == Deleted(messages=2, images=2)
    assert message_ids(d) == set()
    assert d.uow.get(Image, first) is None
    assert d.uow.get(Image, second) is None
    assert d.uow.images_in(frame) == set()
    stored = d.uow.get(Frame, frame.id)
    assert stored is not None
    assert stored.selected_image_id is None
    assert stored.order == 0


async def test_clear_frame_history_clears_a_selection_it_did_not_make() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    uploaded = await an_image(d, frame)
    await d.frames.select_image(frame.id, uploaded)

    # when
    deleted = await d.chats.clear_history(frame)

    # then
    assert deleted == Deleted()
    stored = d.uow.get(Frame, frame.id)
    assert stored is not None
    assert stored.selected_image_id is None
    assert d.uow.images_in(frame) == {uploaded}


async def test_clear_history_takes_the_images_out_of_every_place_and_attachment() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    other_frame = await a_frame(d, scene.video_id)
    _, (made,) = await a_generation(d, frame)
    await d.images.copy(made, other_frame)
    await d.images.copy(made, scene.gallery)
    await d.frames.select_image(other_frame.id, made)
    referencing = await d.seeds.post_message(scene.main_chat, "like", attached_image_ids=[made])

    # when
    deleted = await d.chats.clear_history(frame)

    # then
    assert deleted == Deleted(messages=1, images=1)
    assert d.uow.places_of(made) == set()
    stored = d.uow.get(Frame, other_frame.id)
    assert stored is not None
    assert stored.selected_image_id is None
    assert message_ids(d) == {known(referencing.id)}
    assert d.uow.attachments_of(known(referencing.id)) == []


@pytest.mark.parametrize("kind", [PlaceKind.CONTEXT, PlaceKind.MAIN_CHAT])
async def test_clear_history_of_context_and_main_chat(kind: PlaceKind) -> None:
    # given
    d = domain()
    scene = await a_video(d)
    chat = scene.context if kind is PlaceKind.CONTEXT else scene.main_chat
    await a_generation(d, chat, images=3)
    uploaded = await an_image(d, chat)

    # when
    deleted = await d.chats.clear_history(chat)

    # then
    assert deleted == Deleted(messages=1, images=3)
    assert message_ids(d) == set()
    assert d.uow.images_in(chat) == {uploaded}


async def test_clear_history_leaves_other_chats_alone() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    other_frame = await a_frame(d, scene.video_id)
    await a_generation(d, frame)
    kept_messages = {
        (await a_generation(d, chat))[0] for chat in (other_frame, scene.context, scene.main_chat)
    }
    await d.frames.select_image(other_frame.id, next(iter(d.uow.images_in(other_frame))))
    before = d.uow.snapshot()

    # when
    await d.chats.clear_history(frame)

    # then
    assert message_ids(d) == kept_messages
    after = d.uow.snapshot()
    assert after.rows["Frame"][other_frame.id] == before.rows["Frame"][other_frame.id]
    assert len(after.rows["Image"]) == len(before.rows["Image"]) - 1


async def test_clear_empty_history_counts_nothing() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    deleted = await d.chats.clear_history(scene.main_chat)

    # then
    assert deleted == Deleted()
