"""FrameService against the fake unit of work: frames stay ordered 0..n-1."""

from __future__ import annotations

import pytest

from storyframe.db.tables import TITLE_MAX, Frame, Image, Message
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.services.deletion import Deleted
from storyframe.services.frames import FrameService
from storyframe.services.limits import ListLimits
from storyframe.services.projects import ProjectService, VideoService
from tests.support.builders import (
    Domain,
    a_frame,
    a_generation,
    a_message,
    a_video,
    an_image,
    domain,
)
from tests.support.fakes import FakeUnitOfWork, RecordingReleaser
from tests.support.ids import known


def titles(d: Domain, video_id: int) -> list[str]:
    """The video's frame titles in order, checking the orders are exactly 0..n-1."""
    frames = sorted((f for f in d.uow.all(Frame) if f.video_id == video_id), key=lambda f: f.order)
    assert [f.order for f in frames] == list(range(len(frames)))
    return [f.title for f in frames]


async def video_with_frames(d: Domain, *names: str) -> tuple[int, dict[str, int]]:
    """A video whose frames have the given titles, in that order, and their ids by title."""
    scene = await a_video(d)
    ids = {name: (await a_frame(d, scene.video_id, name)).id for name in names}
    return scene.video_id, ids


# create


async def test_create_appends_frames_in_order() -> None:
    # given
    uow = FakeUnitOfWork()
    project_id = known((await ProjectService(uow, RecordingReleaser()).create("Trip")).id)
    videos = VideoService(uow, RecordingReleaser())
    video_id = known((await videos.create(project_id, "Opening")).id)
    frames = FrameService(uow, RecordingReleaser(), ListLimits())

    # when
    created = [await frames.create(video_id, title) for title in ("A", "B", "C")]

    # then
    assert [f.order for f in created] == [0, 1, 2]
    assert [f.title for f in sorted(uow.all(Frame), key=lambda f: f.order)] == ["A", "B", "C"]


async def test_create_trims_the_title_and_allows_a_blank_one() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    titled = await d.frames.create(scene.video_id, "  Sunrise  ")
    untitled = await d.frames.create(scene.video_id, "   ")

    # then
    assert titled.title == "Sunrise"
    assert untitled.title == ""
    assert titles(d, scene.video_id) == ["Sunrise", ""]


async def test_create_starts_with_nothing_selected() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    frame = await d.frames.create(scene.video_id, "A")

    # then
    assert frame.selected_image_id is None
    assert frame.video_id == scene.video_id


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (0, ["new", "A", "B", "C"]),
        (1, ["A", "new", "B", "C"]),
        (2, ["A", "B", "new", "C"]),
        (3, ["A", "B", "C", "new"]),
        (99, ["A", "B", "C", "new"]),
        (-5, ["new", "A", "B", "C"]),
    ],
)
async def test_create_at_an_order_inserts_there_clamped(order: int, expected: list[str]) -> None:
    # given
    d = domain()
    video_id, _ = await video_with_frames(d, "A", "B", "C")

    # when
    frame = await d.frames.create(video_id, "new", order)

    # then
    assert titles(d, video_id) == expected
    assert frame.order == expected.index("new")


async def test_create_at_an_order_in_an_empty_video_makes_the_first_frame() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    frame = await d.frames.create(scene.video_id, "only", 5)

    # then
    assert frame.order == 0
    assert titles(d, scene.video_id) == ["only"]


async def test_create_leaves_the_frames_of_other_videos_alone() -> None:
    # given
    d = domain()
    video_id, _ = await video_with_frames(d, "A", "B")
    other_id, _ = await video_with_frames(d, "X", "Y")

    # when
    await d.frames.create(video_id, "new", 0)

    # then
    assert titles(d, video_id) == ["new", "A", "B"]
    assert titles(d, other_id) == ["X", "Y"]


async def test_create_refuses_a_title_too_long() -> None:
    # given
    d = domain()
    video_id, _ = await video_with_frames(d, "A")

    # when
    with pytest.raises(DomainError) as raised:
        await d.frames.create(video_id, "t" * (TITLE_MAX + 1), 0)

    # then
    assert raised.value.code is ErrorCode.TOO_LONG
    assert raised.value.field == ["title"]
    assert titles(d, video_id) == ["A"]


# rename


async def test_rename_changes_the_title_only() -> None:
    # given
    d = domain()
    video_id, ids = await video_with_frames(d, "A", "B")

    # when
    frame = await d.frames.rename(ids["B"], " Bee ")

    # then
    assert frame.title == "Bee"
    assert frame.order == 1
    assert titles(d, video_id) == ["A", "Bee"]


async def test_rename_to_blank_clears_the_title() -> None:
    # given
    d = domain()
    video_id, ids = await video_with_frames(d, "A")

    # when
    frame = await d.frames.rename(ids["A"], "")

    # then
    assert frame.title == ""
    assert titles(d, video_id) == [""]


async def test_rename_refuses_a_title_too_long() -> None:
    # given
    d = domain()
    video_id, ids = await video_with_frames(d, "A")

    # when
    with pytest.raises(DomainError) as raised:
        await d.frames.rename(ids["A"], "t" * (TITLE_MAX + 1))

    # then
    assert raised.value.code is ErrorCode.TOO_LONG
    assert raised.value.field == ["title"]
    assert titles(d, video_id) == ["A"]


# reorder


@pytest.mark.parametrize(
    ("title", "order", "expected"),
    [
        ("A", 3, ["B", "C", "D", "A"]),
        ("D", 0, ["D", "A", "B", "C"]),
        ("B", 2, ["A", "C", "B", "D"]),
        ("C", 1, ["A", "C", "B", "D"]),
        ("B", 1, ["A", "B", "C", "D"]),
        ("A", 99, ["B", "C", "D", "A"]),
        ("C", -1, ["C", "A", "B", "D"]),
    ],
)
async def test_reorder_moves_the_frame_and_closes_the_gap(
    title: str, order: int, expected: list[str]
) -> None:
    # given
    d = domain()
    video_id, ids = await video_with_frames(d, "A", "B", "C", "D")

    # when
    frame = await d.frames.reorder(ids[title], order)

    # then
    assert titles(d, video_id) == expected
    assert frame.order == expected.index(title)


async def test_reorder_the_only_frame_keeps_it_first() -> None:
    # given
    d = domain()
    video_id, ids = await video_with_frames(d, "A")

    # when
    frame = await d.frames.reorder(ids["A"], 3)

    # then
    assert frame.order == 0
    assert titles(d, video_id) == ["A"]


async def test_reorder_leaves_other_videos_alone() -> None:
    # given
    d = domain()
    video_id, ids = await video_with_frames(d, "A", "B")
    other_id, _ = await video_with_frames(d, "X", "Y")

    # when
    await d.frames.reorder(ids["A"], 1)

    # then
    assert titles(d, video_id) == ["B", "A"]
    assert titles(d, other_id) == ["X", "Y"]


# select_image


async def test_select_image_of_the_frame() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    image_id = await an_image(d, frame)

    # when
    selected = await d.frames.select_image(frame.id, image_id)

    # then
    assert selected.selected_image_id == image_id
    stored = d.uow.get(Frame, frame.id)
    assert stored is not None
    assert stored.selected_image_id == image_id


async def test_select_another_image_replaces_the_selection() -> None:
    # given
    d = domain()
    frame = await a_frame(d, (await a_video(d)).video_id)
    first, second = await an_image(d, frame), await an_image(d, frame)
    await d.frames.select_image(frame.id, first)

    # when
    selected = await d.frames.select_image(frame.id, second)

    # then
    assert selected.selected_image_id == second


async def test_select_none_clears_the_selection() -> None:
    # given
    d = domain()
    frame = await a_frame(d, (await a_video(d)).video_id)
    await d.frames.select_image(frame.id, await an_image(d, frame))

    # when
    cleared = await d.frames.select_image(frame.id, None)

    # then
    assert cleared.selected_image_id is None
    stored = d.uow.get(Frame, frame.id)
    assert stored is not None
    assert stored.selected_image_id is None


async def test_select_image_not_in_the_frame_is_refused_and_keeps_the_selection() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    other_frame = await a_frame(d, scene.video_id)
    kept = await an_image(d, frame)
    await d.frames.select_image(frame.id, kept)
    elsewhere = await an_image(d, other_frame)

    # when
    with pytest.raises(DomainError) as raised:
        await d.frames.select_image(frame.id, elsewhere)

    # then
    assert raised.value.code is ErrorCode.NOT_IN_PLACE
    assert raised.value.field == ["imageId"]
    stored = d.uow.get(Frame, frame.id)
    assert stored is not None
    assert stored.selected_image_id == kept


async def test_select_image_of_the_same_project_gallery_is_not_in_the_frame() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    gallery_image = await an_image(d, scene.gallery)

    # when
    with pytest.raises(DomainError) as raised:
        await d.frames.select_image(frame.id, gallery_image)

    # then
    assert raised.value.code is ErrorCode.NOT_IN_PLACE


# delete


@pytest.mark.parametrize(
    ("title", "expected"),
    [("A", ["B", "C", "D"]), ("B", ["A", "C", "D"]), ("D", ["A", "B", "C"])],
)
async def test_delete_closes_the_gap(title: str, expected: list[str]) -> None:
    # given
    d = domain()
    video_id, ids = await video_with_frames(d, "A", "B", "C", "D")

    # when
    deleted = await d.frames.delete(ids[title])

    # then
    assert deleted == Deleted(frames=1)
    assert titles(d, video_id) == expected
    assert d.uow.get(Frame, ids[title]) is None


async def test_delete_takes_the_frame_messages_and_the_images_they_made() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    kept_frame = await a_frame(d, scene.video_id)
    await a_generation(d, frame, images=2)
    await a_generation(d, frame, images=1)
    await a_message(d, frame)
    _, (kept_image,) = await a_generation(d, kept_frame)

    # when
    deleted = await d.frames.delete(frame.id)

    # then
    assert deleted == Deleted(frames=1, messages=3, images=3)
    assert [known(i.id) for i in d.uow.all(Image)] == [kept_image]
    assert [m.frame_id for m in d.uow.all(Message)] == [kept_frame.id]
    assert titles(d, scene.video_id) == ["Shot"]


async def test_delete_keeps_images_that_only_appeared_in_the_frame() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    uploaded = await an_image(d, frame)
    other_frame = await a_frame(d, scene.video_id)
    _, (generated_elsewhere,) = await a_generation(d, other_frame)
    await d.images.copy(generated_elsewhere, frame)

    # when
    deleted = await d.frames.delete(frame.id)

    # then
    assert deleted == Deleted(frames=1)
    assert {known(i.id) for i in d.uow.all(Image)} == {uploaded, generated_elsewhere}
    assert d.uow.places_of(uploaded) == set()
    assert d.uow.places_of(generated_elsewhere) == {other_frame}


async def test_delete_clears_selections_of_the_images_it_takes() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    other_frame = await a_frame(d, scene.video_id)
    _, (image_id,) = await a_generation(d, frame)
    await d.images.copy(image_id, other_frame)
    await d.frames.select_image(other_frame.id, image_id)

    # when
    deleted = await d.frames.delete(frame.id)

    # then
    assert deleted.images == 1
    stored = d.uow.get(Frame, other_frame.id)
    assert stored is not None
    assert stored.selected_image_id is None
    assert stored.order == 0


async def test_frames_created_after_a_delete_continue_the_orders() -> None:
    # given
    d = domain()
    video_id, ids = await video_with_frames(d, "A", "B", "C")
    await d.frames.delete(ids["A"])

    # when
    frame = await d.frames.create(video_id, "D")

    # then
    assert frame.order == 2
    assert titles(d, video_id) == ["B", "C", "D"]
