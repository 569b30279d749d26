"""ProjectService and VideoService against the fake unit of work."""

from __future__ import annotations

import pytest

from storyframe.db.tables import NAME_MAX, Context, Frame, Image, MainChat, Message, Project, Video
from storyframe.domain.errors import DomainError, ErrorCode, NotFound
from storyframe.services.deletion import Deleted
from storyframe.services.projects import ProjectService, VideoService
from tests.support.builders import a_frame, a_generation, a_project, a_video, an_image, domain
from tests.support.fakes import FakeUnitOfWork, RecordingReleaser
from tests.support.ids import known

# ProjectService.create


async def test_create_project_stores_the_trimmed_name() -> None:
    # given
    uow = FakeUnitOfWork()
    projects = ProjectService(uow, RecordingReleaser())

    # when
    project = await projects.create("  Summer trip  ")

    # then
    assert project.name == "Summer trip"
    stored = uow.get(Project, known(project.id))
    assert stored is not None
    assert stored.name == "Summer trip"


async def test_create_project_gives_each_project_its_own_id() -> None:
    # given
    projects = ProjectService(FakeUnitOfWork(), RecordingReleaser())

    # when
    first = await projects.create("One")
    second = await projects.create("Two")

    # then
    assert first.id is not None
    assert second.id is not None
    assert first.id != second.id


async def test_create_project_accepts_a_name_of_the_maximum_length() -> None:
    # given
    projects = ProjectService(FakeUnitOfWork(), RecordingReleaser())

    # when
    project = await projects.create("n" * NAME_MAX)

    # then
    assert len(project.name) == NAME_MAX


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", ErrorCode.BLANK),
        ("   \t ", ErrorCode.BLANK),
        ("n" * (NAME_MAX + 1), ErrorCode.TOO_LONG),
        ("bad\x00name", ErrorCode.INVALID),
        ("half a pair \ud83c", ErrorCode.INVALID),
        ("\udfac the other half", ErrorCode.INVALID),
    ],
)
async def test_create_project_refuses_an_invalid_name(name: str, code: ErrorCode) -> None:
    # given
    uow = FakeUnitOfWork()
    projects = ProjectService(uow, RecordingReleaser())

    # when
    with pytest.raises(DomainError) as raised:
        await projects.create(name)

    # then
    assert raised.value.code is code
    assert raised.value.field == ["name"]
    assert uow.all(Project) == []


# ProjectService.rename


async def test_rename_project_changes_its_name() -> None:
    # given
    uow = FakeUnitOfWork()
    projects = ProjectService(uow, RecordingReleaser())
    project_id = known((await projects.create("Old")).id)

    # when
    renamed = await projects.rename(project_id, " New ")

    # then
    assert renamed.name == "New"
    stored = uow.get(Project, project_id)
    assert stored is not None
    assert stored.name == "New"


@pytest.mark.parametrize(
    ("name", "code"), [(" ", ErrorCode.BLANK), ("n" * (NAME_MAX + 1), ErrorCode.TOO_LONG)]
)
async def test_rename_project_refuses_an_invalid_name_and_keeps_the_old_one(
    name: str, code: ErrorCode
) -> None:
    # given
    uow = FakeUnitOfWork()
    projects = ProjectService(uow, RecordingReleaser())
    project_id = known((await projects.create("Old")).id)

    # when
    with pytest.raises(DomainError) as raised:
        await projects.rename(project_id, name)

    # then
    assert raised.value.code is code
    assert raised.value.field == ["name"]
    stored = uow.get(Project, project_id)
    assert stored is not None
    assert stored.name == "Old"


# ProjectService.delete


async def test_delete_project_takes_everything_of_it_and_counts_it() -> None:
    # given
    d = domain()
    first = await a_video(d)
    second = await a_video(d, first.project_id, "Ending")
    frame_a = await a_frame(d, first.video_id)
    frame_b = await a_frame(d, first.video_id)
    frame_c = await a_frame(d, second.video_id)
    await a_generation(d, frame_a, images=2)
    await a_generation(d, frame_c, images=1)
    await a_generation(d, second.main_chat, images=0)
    await an_image(d, frame_b)
    await an_image(d, first.gallery)

    # when
    deleted = await d.projects.delete(first.project_id)

    # then
    assert deleted == Deleted(videos=2, frames=3, messages=3, images=5)
    for model in (Project, Video, Context, Frame, MainChat, Message, Image):
        assert d.uow.all(model) == []
    assert d.uow.snapshot().placements == frozenset()


async def test_delete_project_leaves_other_projects_alone() -> None:
    # given
    d = domain()
    doomed = await a_video(d)
    kept = await a_video(d)
    kept_frame = await a_frame(d, kept.video_id)
    _, (kept_image,) = await a_generation(d, kept_frame)
    await a_generation(d, await a_frame(d, doomed.video_id))
    before = d.uow.snapshot()

    # when
    await d.projects.delete(doomed.project_id)

    # then
    after = d.uow.snapshot()
    assert after.rows["Project"] == {kept.project_id: before.rows["Project"][kept.project_id]}
    assert set(after.rows["Video"]) == {kept.video_id}
    assert set(after.rows["Image"]) == {kept_image}
    assert d.uow.places_of(kept_image) == {kept_frame}


async def test_delete_empty_project_counts_nothing() -> None:
    # given
    d = domain()
    project_id = await a_project(d)

    # when
    deleted = await d.projects.delete(project_id)

    # then
    assert deleted == Deleted()
    assert d.uow.get(Project, project_id) is None


# VideoService.create


async def test_create_video_makes_its_context_and_a_main_chat() -> None:
    # given
    uow = FakeUnitOfWork()
    project_id = known((await ProjectService(uow, RecordingReleaser()).create("Trip")).id)
    videos = VideoService(uow, RecordingReleaser())

    # when
    video = await videos.create(project_id, "  Opening ")

    # then
    assert video.name == "Opening"
    assert video.project_id == project_id
    video_id = known(video.id)
    assert [v.name for v in uow.all(Video)] == ["Opening"]
    (context,) = uow.all(Context)
    assert context.video_id == video_id
    assert context.content == ""
    (chat,) = uow.all(MainChat)
    assert chat.video_id == video_id
    assert chat.name == "Main chat"


async def test_create_video_gives_every_video_its_own_context() -> None:
    # given
    d = domain()
    project_id = await a_project(d)

    # when
    first = await d.videos.create(project_id, "One")
    second = await d.videos.create(project_id, "Two")

    # then
    assert sorted(c.video_id for c in d.uow.all(Context)) == sorted(
        [known(first.id), known(second.id)]
    )


@pytest.mark.parametrize(
    ("name", "code"), [("", ErrorCode.BLANK), ("v" * (NAME_MAX + 1), ErrorCode.TOO_LONG)]
)
async def test_create_video_refuses_an_invalid_name(name: str, code: ErrorCode) -> None:
    # given
    d = domain()
    project_id = await a_project(d)

    # when
    with pytest.raises(DomainError) as raised:
        await d.videos.create(project_id, name)

    # then
    assert raised.value.code is code
    assert raised.value.field == ["name"]
    assert d.uow.all(Video) == []


# VideoService.rename


async def test_rename_video_changes_its_name() -> None:
    # given
    d = domain()
    scene = await a_video(d)

    # when
    video = await d.videos.rename(scene.video_id, "Finale")

    # then
    assert video.name == "Finale"
    stored = d.uow.get(Video, scene.video_id)
    assert stored is not None
    assert stored.name == "Finale"


@pytest.mark.parametrize(
    ("name", "code"), [("\n", ErrorCode.BLANK), ("v" * (NAME_MAX + 1), ErrorCode.TOO_LONG)]
)
async def test_rename_video_refuses_an_invalid_name(name: str, code: ErrorCode) -> None:
    # given
    d = domain()
    scene = await a_video(d, name="Opening")

    # when
    with pytest.raises(DomainError) as raised:
        await d.videos.rename(scene.video_id, name)

    # then
    assert raised.value.code is code
    assert raised.value.field == ["name"]
    stored = d.uow.get(Video, scene.video_id)
    assert stored is not None
    assert stored.name == "Opening"


# VideoService.delete


async def test_delete_video_takes_its_context_chats_frames_messages_and_images() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    await a_frame(d, scene.video_id)
    await d.main_chats.create(scene.video_id, "Ideas")
    await a_generation(d, frame, images=2)
    await a_generation(d, scene.context, images=1)
    await a_generation(d, scene.main_chat, images=0)
    await an_image(d, frame)

    # when
    deleted = await d.videos.delete(scene.video_id)

    # then
    assert deleted == Deleted(videos=1, frames=2, messages=3, images=4)
    for model in (Video, Context, Frame, MainChat, Message, Image):
        assert d.uow.all(model) == []
    assert d.uow.snapshot().placements == frozenset()
    assert d.uow.get(Project, scene.project_id) is not None


async def test_delete_video_keeps_the_project_gallery_and_other_videos() -> None:
    # given
    d = domain()
    doomed = await a_video(d)
    kept = await a_video(d, doomed.project_id, "Kept")
    gallery_image = await an_image(d, doomed.gallery)
    kept_frame = await a_frame(d, kept.video_id)
    kept_image = await an_image(d, kept_frame)
    await a_generation(d, await a_frame(d, doomed.video_id))

    # when
    deleted = await d.videos.delete(doomed.video_id)

    # then
    assert deleted == Deleted(videos=1, frames=1, messages=1, images=1)
    assert {known(i.id) for i in d.uow.all(Image)} == {gallery_image, kept_image}
    assert d.uow.places_of(gallery_image) == {doomed.gallery}
    assert d.uow.places_of(kept_image) == {kept_frame}
    assert [c.video_id for c in d.uow.all(Context)] == [kept.video_id]


async def test_delete_video_takes_its_images_out_of_the_gallery_too() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    image_id = await an_image(d, frame)
    await d.images.copy(image_id, scene.gallery)

    # when
    deleted = await d.videos.delete(scene.video_id)

    # then
    assert deleted.images == 1
    assert d.uow.images_in(scene.gallery) == set()


async def test_a_deleted_video_is_gone_for_later_work() -> None:
    # given
    d = domain()
    scene = await a_video(d)
    await d.videos.delete(scene.video_id)

    # when
    with pytest.raises(NotFound) as raised:
        await d.frames.create(scene.video_id, "Late")

    # then
    assert raised.value.field == ["videoId"]
    assert d.uow.all(Frame) == []
