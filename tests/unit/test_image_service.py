"""ImageService against the fake unit of work: images and the places they appear in."""

from __future__ import annotations

import pytest

from storyframe.db.tables import Frame, Image, Message
from storyframe.domain.errors import DomainError, ErrorCode, NotFound
from storyframe.domain.places import Place, PlaceKind
from storyframe.services.deletion import Deleted
from tests.support.builders import (
    Domain,
    a_frame,
    a_generation,
    a_video,
    an_image,
    domain,
    message_ids,
)
from tests.support.ids import known
from tests.support.images import stored_image

ALL_KINDS = [PlaceKind.FRAME, PlaceKind.CONTEXT, PlaceKind.MAIN_CHAT, PlaceKind.GALLERY]


def image(d: Domain, image_id: int) -> Image:
    row = d.uow.get(Image, image_id)
    assert row is not None
    return row


def selected(d: Domain, frame: Place) -> int | None:
    row = d.uow.get(Frame, frame.id)
    assert row is not None
    return row.selected_image_id


# add


async def test_add_to_a_frame_records_an_image_of_its_project_and_video() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    bytes_ = stored_image("kite.png")

    # when
    added = await d.seeds.add_image(frame, bytes_)

    # then
    image_id = known(added.id)
    assert (added.project_id, added.video_id, added.message_id) == (
        scene.project_id,
        scene.video_id,
        None,
    )
    assert (added.url, added.storage_key, added.width, added.height) == (
        bytes_.url,
        "kite.png",
        bytes_.width,
        bytes_.height,
    )
    assert (added.content_type, added.byte_size) == (bytes_.content_type, bytes_.byte_size)
    assert d.uow.places_of(image_id) == {frame}
    assert image(d, image_id).storage_key == "kite.png"


async def test_add_to_a_gallery_records_an_image_of_no_video() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    added = await d.seeds.add_image(scene.gallery, stored_image())

    # then
    assert added.project_id == scene.project_id
    assert added.video_id is None
    assert d.uow.places_of(known(added.id)) == {scene.gallery}


@pytest.mark.parametrize("kind", [PlaceKind.CONTEXT, PlaceKind.MAIN_CHAT])
async def test_add_to_a_chat_of_the_video(kind: PlaceKind) -> None:
    # given
    d = domain()
    scene = await a_video(d)
    place = scene.context if kind is PlaceKind.CONTEXT else scene.main_chat

    # when
    added = await d.seeds.add_image(place, stored_image())

    # then
    assert added.video_id == scene.video_id
    assert d.uow.places_of(known(added.id)) == {place}


async def test_add_made_by_a_message_remembers_it() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    message = await d.seeds.post_message(scene.main_chat, "a kite")

    # when
    added = await d.seeds.add_image(scene.main_chat, stored_image(), known(message.id))

    # then
    assert added.message_id == message.id
    assert image(d, known(added.id)).message_id == message.id


# copy


async def test_copy_within_the_project_adds_a_place_to_the_same_image() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    source = await a_frame(d, scene.video_id)
    target = await a_frame(d, scene.video_id)
    message_id, (image_id,) = await a_generation(d, source)

    # when
    copied = await d.images.copy(image_id, target)

    # then
    assert copied.id == image_id
    assert copied.message_id == message_id
    assert [known(i.id) for i in d.uow.all(Image)] == [image_id]
    assert d.uow.places_of(image_id) == {source, target}


async def test_copy_to_another_video_of_the_project_keeps_the_image() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    other = await a_video(d, scene.project_id, "Other")
    image_id = await an_image(d, scene.gallery)

    # when
    copied = await d.images.copy(image_id, other.context)

    # then
    assert copied.id == image_id
    assert copied.video_id is None
    assert d.uow.places_of(image_id) == {scene.gallery, other.context}


async def test_copy_is_idempotent() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    image_id = await an_image(d, scene.main_chat)
    await d.images.copy(image_id, scene.gallery)
    once = d.uow.snapshot()

    # when
    again = await d.images.copy(image_id, scene.gallery)

    # then
    assert again.id == image_id
    assert d.uow.snapshot() == once


async def test_copy_into_a_place_the_image_is_in_changes_nothing() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    image_id = await an_image(d, scene.context)
    before = d.uow.snapshot()

    # when
    copied = await d.images.copy(image_id, scene.context)

    # then
    assert copied.id == image_id
    assert d.uow.snapshot() == before


async def test_copy_across_projects_makes_a_new_image_of_the_target_project() -> None:
    # given
    d = domain()
    source = await a_video(d)
    target = await a_video(d)
    source_frame = await a_frame(d, source.video_id)
    target_frame = await a_frame(d, target.video_id)
    _, (original_id,) = await a_generation(d, source_frame)
    original = image(d, original_id)

    # when
    copy = await d.images.copy(original_id, target_frame)

    # then
    copy_id = known(copy.id)
    assert copy_id != original_id
    assert (copy.project_id, copy.video_id, copy.message_id) == (
        target.project_id,
        target.video_id,
        None,
    )
    kept = ("url", "storage_key", "width", "height", "content_type", "byte_size")
    assert copy.model_dump(include=set(kept)) == original.model_dump(include=set(kept))
    assert image(d, copy_id).project_id == target.project_id
    assert d.uow.places_of(copy_id) == {target_frame}
    assert image(d, original_id) == original
    assert d.uow.places_of(original_id) == {source_frame}


async def test_copy_across_projects_to_a_gallery_is_of_no_video() -> None:
    # given
    d = domain()
    source = await a_video(d)
    target = await a_video(d)
    original_id = await an_image(d, source.context)

    # when
    copy = await d.images.copy(original_id, target.gallery)

    # then
    assert copy.project_id == target.project_id
    assert copy.video_id is None
    assert d.uow.images_in(target.gallery) == {known(copy.id)}


async def test_a_cross_project_copy_outlives_the_original_project() -> None:
    # given
    d = domain()
    source = await a_video(d)
    target = await a_video(d)
    _, (original_id,) = await a_generation(d, source.main_chat)
    copy_id = known((await d.images.copy(original_id, target.gallery)).id)

    # when
    await d.projects.delete(source.project_id)

    # then
    assert d.uow.get(Image, original_id) is None
    assert d.uow.places_of(copy_id) == {target.gallery}


# move within a project


async def test_move_takes_the_image_out_of_the_source_into_the_target() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    source = await a_frame(d, scene.video_id)
    target = await a_frame(d, scene.video_id)
    message_id, (image_id,) = await a_generation(d, source)
    await d.images.copy(image_id, scene.gallery)

    # when
    moved = await d.images.move(image_id, source, target)

    # then
    assert moved.id == image_id
    assert (moved.project_id, moved.video_id, moved.message_id) == (
        scene.project_id,
        scene.video_id,
        message_id,
    )
    assert d.uow.places_of(image_id) == {target, scene.gallery}
    assert [known(i.id) for i in d.uow.all(Image)] == [image_id]


async def test_move_out_of_a_frame_unselects_it_there_only() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    source = await a_frame(d, scene.video_id)
    other = await a_frame(d, scene.video_id)
    image_id = await an_image(d, source)
    await d.images.copy(image_id, other)
    await d.frames.select_image(source.id, image_id)
    await d.frames.select_image(other.id, image_id)

    # when
    await d.images.move(image_id, source, scene.gallery)

    # then
    assert selected(d, source) is None
    assert selected(d, other) == image_id


async def test_move_into_a_place_the_image_is_already_in_just_leaves_the_source() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    image_id = await an_image(d, scene.context)
    await d.images.copy(image_id, scene.main_chat)

    # when
    await d.images.move(image_id, scene.context, scene.main_chat)

    # then
    assert d.uow.places_of(image_id) == {scene.main_chat}


async def test_move_to_the_same_place_is_refused() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    image_id = await an_image(d, scene.gallery)
    before = d.uow.snapshot()

    # when
    with pytest.raises(DomainError) as raised:
        await d.images.move(image_id, scene.gallery, scene.gallery)

    # then
    assert raised.value.code is ErrorCode.SAME_PLACE
    assert raised.value.field == ["targetId"]
    assert d.uow.snapshot() == before


async def test_move_from_a_place_the_image_is_not_in_is_refused_and_changes_nothing() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    image_id = await an_image(d, frame)
    await d.images.copy(image_id, scene.context)
    await d.frames.select_image(frame.id, image_id)
    before = d.uow.snapshot()

    # when
    with pytest.raises(DomainError) as raised:
        await d.images.move(image_id, scene.main_chat, scene.gallery)

    # then
    assert raised.value.code is ErrorCode.NOT_IN_PLACE
    assert raised.value.field == ["sourceId"]
    assert d.uow.snapshot() == before
    assert d.uow.places_of(image_id) == {frame, scene.context}


# move across projects


async def test_move_across_projects_rehomes_the_image() -> None:
    # given
    d = domain()
    source = await a_video(d)
    target = await a_video(d)
    source_frame = await a_frame(d, source.video_id)
    target_frame = await a_frame(d, target.video_id)
    _, (image_id,) = await a_generation(d, source_frame)

    # when
    moved = await d.images.move(image_id, source_frame, target_frame)

    # then
    assert moved.id == image_id
    assert (moved.project_id, moved.video_id, moved.message_id) == (
        target.project_id,
        target.video_id,
        None,
    )
    stored_image = image(d, image_id)
    assert (stored_image.project_id, stored_image.video_id, stored_image.message_id) == (
        target.project_id,
        target.video_id,
        None,
    )
    assert d.uow.places_of(image_id) == {target_frame}
    assert len(d.uow.all(Image)) == 1


async def test_move_across_projects_leaves_every_place_of_the_old_project() -> None:
    # given
    d = domain()
    source = await a_video(d)
    sibling = await a_video(d, source.project_id, "Sibling")
    target = await a_video(d)
    source_frame = await a_frame(d, source.video_id)
    other_frame = await a_frame(d, sibling.video_id)
    image_id = await an_image(d, source_frame)
    for place in (other_frame, source.context, sibling.main_chat, source.gallery):
        await d.images.copy(image_id, place)
    await d.frames.select_image(source_frame.id, image_id)
    await d.frames.select_image(other_frame.id, image_id)

    # when
    await d.images.move(image_id, source.gallery, target.gallery)

    # then
    assert d.uow.places_of(image_id) == {target.gallery}
    assert selected(d, source_frame) is None
    assert selected(d, other_frame) is None
    moved = image(d, image_id)
    assert (moved.project_id, moved.video_id) == (target.project_id, None)


async def test_move_across_projects_leaves_other_images_where_they_are() -> None:
    # given
    d = domain()
    source = await a_video(d)
    target = await a_video(d)
    frame = await a_frame(d, source.video_id)
    moving = await an_image(d, frame)
    staying = await an_image(d, frame)
    await d.frames.select_image(frame.id, staying)

    # when
    await d.images.move(moving, frame, target.main_chat)

    # then
    assert d.uow.images_in(frame) == {staying}
    assert selected(d, frame) == staying
    assert image(d, staying).project_id == source.project_id


async def test_a_moved_image_no_longer_goes_with_its_old_message() -> None:
    # given
    d = domain()
    source = await a_video(d)
    target = await a_video(d)
    frame = await a_frame(d, source.video_id)
    _, (image_id,) = await a_generation(d, frame)
    await d.images.move(image_id, frame, target.gallery)

    # when
    deleted = await d.chats.clear_history(frame)

    # then
    assert deleted == Deleted(messages=1)
    assert d.uow.places_of(image_id) == {target.gallery}


async def test_a_moved_image_goes_with_its_new_project_not_the_old_one() -> None:
    # given
    d = domain()
    source = await a_video(d)
    target = await a_video(d)
    image_id = await an_image(d, source.context)
    await d.images.move(image_id, source.context, target.context)

    # when
    old = await d.projects.delete(source.project_id)
    new = await d.videos.delete(target.video_id)

    # then
    assert old.images == 0
    assert new.images == 1
    assert d.uow.get(Image, image_id) is None


async def test_a_refused_move_across_projects_does_not_rehome_the_image() -> None:
    # given
    d = domain()
    source = await a_video(d)
    target = await a_video(d)
    frame = await a_frame(d, source.video_id)
    _, (image_id,) = await a_generation(d, frame)
    await d.images.copy(image_id, source.gallery)
    before = d.uow.snapshot()

    # when
    with pytest.raises(DomainError) as raised:
        await d.images.move(image_id, source.context, target.gallery)

    # then
    assert raised.value.code is ErrorCode.NOT_IN_PLACE
    assert d.uow.snapshot() == before
    assert image(d, image_id).project_id == source.project_id


# remove


async def test_remove_takes_the_image_out_of_one_place_only() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    image_id = await an_image(d, scene.context)
    await d.images.copy(image_id, scene.gallery)

    # when
    removed = await d.images.remove(image_id, scene.gallery)

    # then
    assert removed.id == image_id
    assert d.uow.places_of(image_id) == {scene.context}
    assert image(d, image_id).project_id == scene.project_id


async def test_remove_from_the_last_place_keeps_the_image_in_its_project() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    message_id, (image_id,) = await a_generation(d, scene.main_chat)

    # when
    await d.images.remove(image_id, scene.main_chat)

    # then
    assert d.uow.places_of(image_id) == set()
    assert image(d, image_id).message_id == message_id
    assert message_ids(d) == {message_id}


async def test_remove_from_a_frame_unselects_the_image_there() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    image_id = await an_image(d, frame)
    await d.frames.select_image(frame.id, image_id)

    # when
    await d.images.remove(image_id, frame)

    # then
    assert selected(d, frame) is None
    assert d.uow.images_in(frame) == set()


async def test_remove_another_image_keeps_the_selection() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    chosen, other = await an_image(d, frame), await an_image(d, frame)
    await d.frames.select_image(frame.id, chosen)

    # when
    await d.images.remove(other, frame)

    # then
    assert selected(d, frame) == chosen
    assert d.uow.images_in(frame) == {chosen}


async def test_remove_from_a_place_the_image_is_not_in_is_refused() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    image_id = await an_image(d, scene.context)
    before = d.uow.snapshot()

    # when
    with pytest.raises(DomainError) as raised:
        await d.images.remove(image_id, scene.gallery)

    # then
    assert raised.value.code is ErrorCode.NOT_IN_PLACE
    assert raised.value.field == ["sourceId"]
    assert d.uow.snapshot() == before


# delete


async def test_delete_takes_the_image_out_of_everything() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    message_id, (image_id,) = await a_generation(d, frame)
    kept = await an_image(d, frame)
    await d.images.copy(image_id, scene.gallery)
    await d.frames.select_image(frame.id, image_id)
    referencing = await d.seeds.post_message(
        scene.main_chat, "like these", attached_image_ids=[image_id, kept]
    )

    # when
    deleted = await d.images.delete(image_id)

    # then
    assert deleted == Deleted(images=1)
    assert d.uow.get(Image, image_id) is None
    assert d.uow.places_of(image_id) == set()
    assert selected(d, frame) is None
    assert d.uow.attachments_of(known(referencing.id)) == [kept]
    assert message_ids(d) == {message_id, known(referencing.id)}
    assert d.uow.images_in(frame) == {kept}


async def test_a_deleted_image_can_no_longer_be_selected() -> None:
    # given
    d = domain()
    frame = await a_frame(d, (await a_video(d)).video_id)
    image_id = await an_image(d, frame)
    await d.images.delete(image_id)

    # when
    with pytest.raises(NotFound) as raised:
        await d.frames.select_image(frame.id, image_id)

    # then
    assert raised.value.field == ["imageId"]
    assert d.uow.all(Message) == []
