"""The bounds on plain lists (a video's frames and main chats, an image's places) against the fake
unit of work: a list at its bound refuses to grow, changing nothing, and only growth is refused."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest

from storyframe.db.tables import Image, MainChat
from storyframe.domain.errors import ErrorCode, LimitReached
from storyframe.domain.places import Place
from storyframe.services.limits import ListLimits
from storyframe.settings import Settings
from tests.support.builders import Domain, a_frame, a_project, a_video, an_image, domain
from tests.support.ids import known


async def refusal(d: Domain, growth: Awaitable[object]) -> tuple[str, list[str] | None]:
    """The message and the field of the `LimitReached` that `growth` raises, which must change
    nothing."""
    before, commits = d.uow.snapshot(), d.uow.commits
    with pytest.raises(LimitReached) as raised:
        await growth
    assert raised.value.code is ErrorCode.LIMIT_REACHED
    assert (d.uow.snapshot(), d.uow.commits) == (before, commits)
    return raised.value.message, raised.value.field


# the limits themselves


def test_the_default_limits_are_the_settings_defaults() -> None:
    fields = Settings.model_fields

    assert ListLimits() == ListLimits(
        frames_per_video=fields["max_frames_per_video"].default,
        main_chats_per_video=fields["max_main_chats_per_video"].default,
        image_places=fields["max_image_places"].default,
    )


@pytest.mark.parametrize("name", ["frames_per_video", "main_chats_per_video", "image_places"])
def test_a_limit_below_one_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ListLimits(**{name: 0})


# frames of a video


@pytest.mark.parametrize("order", [None, 0])
async def test_a_frame_beyond_the_limit_of_its_video_is_refused_and_changes_nothing(
    order: int | None,
) -> None:
    # given
    d = domain(ListLimits(frames_per_video=2))
    scene = await a_video(d)
    await a_frame(d, scene.video_id, "one")
    await a_frame(d, scene.video_id, "two")

    # when
    refused = await refusal(d, d.frames.create(scene.video_id, "three", order))

    # then
    assert refused == ("a video has at most 2 frames", ["videoId"])


async def test_a_frame_up_to_the_limit_is_created() -> None:
    # given
    d = domain(ListLimits(frames_per_video=2))
    scene = await a_video(d)
    await a_frame(d, scene.video_id, "one")

    # when
    last = await d.frames.create(scene.video_id, "two", 0)

    # then
    assert last.order == 0


async def test_the_frame_limit_counts_the_frames_of_each_video_apart() -> None:
    # given
    d = domain(ListLimits(frames_per_video=1))
    full = await a_video(d)
    await a_frame(d, full.video_id)
    other = await a_video(d, full.project_id, "Other")

    # when
    frame = await d.frames.create(other.video_id, "first")

    # then
    assert frame.video_id == other.video_id


async def test_deleting_a_frame_makes_room_for_another() -> None:
    # given
    d = domain(ListLimits(frames_per_video=1))
    scene = await a_video(d)
    first = await a_frame(d, scene.video_id)
    await d.frames.delete(first.id)

    # when
    frame = await d.frames.create(scene.video_id, "again")

    # then
    assert frame.order == 0


# main chats of a video


def main_chats_of(d: Domain, video_id: int) -> list[str]:
    return [c.name for c in d.uow.all(MainChat) if c.video_id == video_id]


async def test_a_main_chat_beyond_the_limit_of_its_video_is_refused_and_changes_nothing() -> None:
    # given: a video starts with one main chat
    d = domain(ListLimits(main_chats_per_video=2))
    scene = await a_video(d)
    await d.main_chats.create(scene.video_id, "Second")

    # when
    refused = await refusal(d, d.main_chats.create(scene.video_id, "Third"))

    # then
    assert refused == ("a video has at most 2 main chats", ["videoId"])
    assert main_chats_of(d, scene.video_id) == ["Main chat", "Second"]


async def test_the_main_chat_limit_counts_the_chats_of_each_video_apart() -> None:
    # given
    d = domain(ListLimits(main_chats_per_video=2))
    full = await a_video(d)
    await d.main_chats.create(full.video_id, "Second")
    other = await a_video(d, full.project_id, "Other")

    # when
    await d.main_chats.create(other.video_id, "Second")

    # then
    assert main_chats_of(d, other.video_id) == ["Main chat", "Second"]


async def test_deleting_a_main_chat_makes_room_for_another() -> None:
    # given
    d = domain(ListLimits(main_chats_per_video=1))
    scene = await a_video(d)
    await d.main_chats.delete(scene.main_chat.id)

    # when
    await d.main_chats.create(scene.video_id, "Fresh")

    # then
    assert main_chats_of(d, scene.video_id) == ["Fresh"]


# places of an image


async def image_in_two_places(d: Domain) -> tuple[int, Place, Place]:
    """An image appearing in a frame and its project's gallery, and a third place for it."""
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    image_id = await an_image(d, frame)
    await d.images.copy(image_id, scene.gallery)
    return image_id, frame, scene.context


async def test_copying_an_image_into_one_place_too_many_is_refused_and_changes_nothing() -> None:
    # given
    d = domain(ListLimits(image_places=2))
    image_id, _, third = await image_in_two_places(d)

    # when
    refused = await refusal(d, d.images.copy(image_id, third))

    # then
    assert refused == ("an image appears in at most 2 places", ["imageId"])


async def test_copying_an_image_at_the_limit_into_a_place_it_is_in_changes_nothing() -> None:
    # given
    d = domain(ListLimits(image_places=2))
    image_id, frame, _ = await image_in_two_places(d)
    before = d.uow.snapshot()

    # when
    copied = await d.images.copy(image_id, frame)

    # then
    assert copied.id == image_id
    assert d.uow.snapshot() == before


async def test_copying_an_image_at_the_limit_into_another_project_makes_a_new_image() -> None:
    # given
    d = domain(ListLimits(image_places=2))
    image_id, _, _ = await image_in_two_places(d)
    elsewhere = await a_video(d, await a_project(d, "Elsewhere"))

    # when
    copied = await d.images.copy(image_id, elsewhere.context)

    # then
    assert copied.id != image_id
    assert d.uow.places_of(known(copied.id)) == {elsewhere.context}
    assert len(d.uow.places_of(image_id)) == 2


async def test_moving_an_image_at_the_limit_within_its_project_is_not_refused() -> None:
    # given: a move takes the image out of one place as it puts it in another
    d = domain(ListLimits(image_places=2))
    image_id, frame, third = await image_in_two_places(d)
    gallery = next(p for p in d.uow.places_of(image_id) if p != frame)

    # when
    await d.images.move(image_id, frame, third)

    # then
    assert d.uow.places_of(image_id) == {gallery, third}


async def test_moving_an_image_at_the_limit_into_another_project_is_not_refused() -> None:
    # given
    d = domain(ListLimits(image_places=2))
    image_id, frame, _ = await image_in_two_places(d)
    elsewhere = await a_video(d, await a_project(d, "Elsewhere"))

    # when
    await d.images.move(image_id, frame, elsewhere.main_chat)

    # then
    assert d.uow.places_of(image_id) == {elsewhere.main_chat}


async def test_removing_an_image_from_a_place_makes_room_for_another() -> None:
    # given
    d = domain(ListLimits(image_places=2))
    image_id, frame, third = await image_in_two_places(d)
    await d.images.remove(image_id, frame)

    # when
    await d.images.copy(image_id, third)

    # then
    assert frame not in d.uow.places_of(image_id)
    assert third in d.uow.places_of(image_id)
    assert len(d.uow.places_of(image_id)) == 2


async def test_images_added_to_a_place_each_start_in_that_one_place() -> None:
    # given: uploads and generations add new images, which appear only where they are added
    d = domain(ListLimits(image_places=1))
    scene = await a_video(d)

    # when
    first = await an_image(d, scene.gallery)
    second = await an_image(d, scene.gallery)

    # then
    assert [known(i.id) for i in d.uow.all(Image)] == [first, second]
    assert d.uow.images_in(scene.gallery) == {first, second}
