"""The fake unit of work keeps the promises the services rely on from the SQL one."""

from __future__ import annotations

import pytest

from storyframe.db.tables import Context, Frame, Project, Video
from storyframe.domain.places import Place, PlaceKind, PlaceOwner
from storyframe.domain.ports import Doomed
from tests.support.fakes import (
    ConstraintViolation,
    FakeRepository,
    FakeUnitOfWork,
    RepositoryClosed,
)


async def test_add_assigns_ids() -> None:
    # given
    uow = FakeUnitOfWork()
    first, second = Project(name="One"), Project(name="Two")

    # when
    async with uow() as repo:
        await repo.add(first)
        await repo.add(second)
        await repo.commit()

    # then
    assert (first.id, second.id) == (1, 2)
    assert [p.name for p in uow.all(Project)] == ["One", "Two"]


async def test_work_not_committed_is_dropped() -> None:
    # given
    uow = FakeUnitOfWork()

    # when
    async with uow() as repo:
        await repo.add(Project(name="Draft"))

    # then
    assert uow.all(Project) == []
    assert uow.commits == 0


async def test_a_unit_of_work_that_raises_leaves_nothing_behind() -> None:
    # given
    uow = FakeUnitOfWork()
    async with uow() as repo:
        project = Project(name="Kept")
        await repo.add(project)
        await repo.commit()
    before = uow.snapshot()

    async def work_that_fails() -> None:
        async with uow() as repo:
            loaded = await repo.get(Project, 1)
            assert loaded is not None
            loaded.name = "Changed"
            await repo.save(loaded)
            await repo.add(Project(name="Extra"))
            raise RuntimeError("boom")

    # when
    with pytest.raises(RuntimeError):
        await work_that_fails()

    # then
    assert uow.snapshot() == before


async def test_rows_handed_out_are_not_the_committed_ones() -> None:
    # given
    uow = FakeUnitOfWork()
    project = Project(name="Trip")
    async with uow() as repo:
        await repo.add(project)
        await repo.commit()

    # when
    project.name = "Changed outside"

    # then
    stored = uow.get(Project, 1)
    assert stored is not None
    assert stored.name == "Trip"


async def test_a_dangling_foreign_key_is_refused() -> None:
    # given
    uow = FakeUnitOfWork()

    # when
    with pytest.raises(ConstraintViolation):
        async with uow() as repo:
            await repo.add(Video(project_id=404, name="Orphan"))

    # then
    assert uow.all(Video) == []


async def test_two_frames_at_one_order_are_refused() -> None:
    # given
    repo = FakeRepository()
    await repo.add(Project(name="Trip"))
    await repo.add(Video(project_id=1, name="Opening"))
    await repo.add(Frame(video_id=1, title="A", order=0))

    # when
    with pytest.raises(ConstraintViolation):
        await repo.add(Frame(video_id=1, title="B", order=0))

    # then
    assert [f.title for f in await repo.frames_of_video(1)] == ["A"]


async def test_deleting_a_project_cascades_like_the_schema() -> None:
    # given
    repo = FakeRepository()
    await repo.add(Project(name="Trip"))
    await repo.add(Video(project_id=1, name="Opening"))
    await repo.add(Context(video_id=1))
    owner = await repo.owner_of(Place(PlaceKind.CONTEXT, 1))

    # when
    await repo.delete(Doomed(projects={1}))

    # then
    assert owner == PlaceOwner(1, 1)
    assert await repo.get(Video, 1) is None
    assert await repo.get(Context, 1) is None
    assert await repo.owner_of(Place(PlaceKind.CONTEXT, 1)) is None


async def test_a_repository_is_unusable_after_its_unit_of_work() -> None:
    # given
    uow = FakeUnitOfWork()
    async with uow() as repo:
        pass

    # when
    with pytest.raises(RepositoryClosed):
        await repo.get(Project, 1)

    # then
    assert uow.commits == 0
