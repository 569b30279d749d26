"""Concurrent edits of one video's frames keep its orders 0..n-1: contiguous and unique.

On PostgreSQL every call runs in its own transaction on its own pooled connection, truly at the
same time, and they serialise on the video's row lock; on SQLite writers queue on BEGIN IMMEDIATE.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable
from sqlmodel import col

from storyframe.db.engine import WRITE_OPTION
from storyframe.db.tables import Frame, Video
from storyframe.domain.errors import NotFound
from storyframe.runtime import Runtime
from storyframe.services.container import Services

INITIAL_FRAMES = 10


@pytest.fixture(params=[7, 2024, 31337])
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A random source, seeded: each seed a run of its own, and a failing run replayable."""
    seed: int = request.param
    return random.Random(seed)


async def new_video(services: Services, frames: int) -> tuple[int, list[int]]:
    project = await services.projects.create("Concurrency")
    assert project.id is not None
    video = await services.videos.create(project.id, "Race")
    assert video.id is not None
    frame_ids: list[int] = []
    for number in range(frames):
        frame = await services.frames.create(video.id, f"frame {number}")
        assert frame.id is not None
        frame_ids.append(frame.id)
    return video.id, frame_ids


async def frame_orders(engine: AsyncEngine, video_id: int) -> dict[int, int]:
    """frame id → order, as committed in the database."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(col(Frame.id), col(Frame.order)).where(col(Frame.video_id) == video_id)
        )
        orders: dict[int, int] = {}
        for frame_id, order in rows.all():
            assert frame_id is not None
            orders[frame_id] = order
        return orders


def assert_contiguous(orders: dict[int, int]) -> None:
    assert sorted(orders.values()) == list(range(len(orders))), orders


@dataclass
class Plan:
    """A shuffled mix of reorders, creates and deletes, and what they should leave behind."""

    calls: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)
    created: int = 0


def plan(
    services: Services,
    rng: random.Random,
    video_id: int,
    frame_ids: list[int],
    *,
    reorders: int,
    creates: int,
    deletes: int,
) -> Plan:
    result = Plan()
    result.deleted = set(rng.sample(frame_ids, deletes))
    for frame_id in result.deleted:
        result.calls.append(partial(services.frames.delete, frame_id))
    for number in range(creates):
        # Some appended, some inserted, some asked for an order out of range (clamped).
        order = rng.choice([None, rng.randint(-3, len(frame_ids) + 3)])
        result.calls.append(partial(services.frames.create, video_id, f"new {number}", order))
    result.created = creates
    for _ in range(reorders):
        frame_id = rng.choice(frame_ids)
        order = rng.randint(-2, len(frame_ids) + 2)
        result.calls.append(partial(services.frames.reorder, frame_id, order))
    rng.shuffle(result.calls)
    return result


async def test_concurrent_reorders_keep_orders_contiguous(
    services: Services, runtime: Runtime, rng: random.Random
) -> None:
    video_id, frame_ids = await new_video(services, INITIAL_FRAMES)

    calls = [
        partial(services.frames.reorder, rng.choice(frame_ids), rng.randint(-2, INITIAL_FRAMES + 2))
        for _ in range(40)
    ]
    results = await asyncio.gather(*(call() for call in calls), return_exceptions=True)

    errors = [result for result in results if isinstance(result, BaseException)]
    assert errors == []
    orders = await frame_orders(runtime.engine, video_id)
    assert set(orders) == set(frame_ids)
    assert_contiguous(orders)


async def test_concurrent_reorders_creates_and_deletes_keep_orders_contiguous(
    services: Services, runtime: Runtime, rng: random.Random
) -> None:
    video_id, frame_ids = await new_video(services, INITIAL_FRAMES)
    mix = plan(services, rng, video_id, frame_ids, reorders=40, creates=6, deletes=4)

    results = await asyncio.gather(*(call() for call in mix.calls), return_exceptions=True)

    # A reorder that lands after its frame was deleted is told so; nothing else may fail.
    unexpected = [
        result
        for result in results
        if isinstance(result, BaseException) and not isinstance(result, NotFound)
    ]
    assert unexpected == []
    orders = await frame_orders(runtime.engine, video_id)
    assert len(orders) == INITIAL_FRAMES + mix.created - len(mix.deleted)
    assert not mix.deleted & set(orders)
    assert set(frame_ids) - mix.deleted <= set(orders)
    assert_contiguous(orders)


async def backend_waits_for_a_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


async def while_video_is_locked(
    runtime: Runtime,
    dialect: str,
    video_id: int,
    call: Callable[[], Awaitable[object]],
    meanwhile: Executable,
) -> asyncio.Task[object]:
    """Start `call` while another transaction holds the video's lock and runs `meanwhile`.

    On PostgreSQL the call gets as far as waiting for the video's row lock before `meanwhile`
    runs; on SQLite it queues on BEGIN IMMEDIATE. The caller awaits the returned task.
    """

    async def started() -> object:
        return await call()

    async with runtime.engine.connect() as connection:
        writer = await connection.execution_options(**{WRITE_OPTION: True})
        async with writer.begin():
            await writer.execute(
                select(col(Video.id)).where(col(Video.id) == video_id).with_for_update()
            )
            task = asyncio.create_task(started())
            if dialect == "postgresql":
                for _ in range(500):  # bounded: the call must come to wait for the lock
                    if await backend_waits_for_a_lock(runtime.engine):
                        break
                    await asyncio.sleep(0.01)
                else:
                    task.cancel()
                    pytest.fail("the call never waited for the video's lock")
            await writer.execute(meanwhile)
    return task


CALLS_ON_A_FRAME: dict[str, Callable[[Services, int], Awaitable[object]]] = {
    "reordering": lambda services, frame_id: services.frames.reorder(frame_id, 0),
    "deleting": lambda services, frame_id: services.frames.delete(frame_id),
}


@pytest.mark.parametrize("call", CALLS_ON_A_FRAME.values(), ids=CALLS_ON_A_FRAME.keys())
async def test_a_frame_deleted_while_its_call_waits_for_the_video_is_not_found(
    services: Services,
    runtime: Runtime,
    dialect: str,
    call: Callable[[Services, int], Awaitable[object]],
) -> None:
    """The call read its frame, then waited for the video; meanwhile the frame went away."""
    video_id, frame_ids = await new_video(services, 3)
    last = frame_ids[-1]  # deleting the last frame leaves no gap to close

    waiting = await while_video_is_locked(
        runtime,
        dialect,
        video_id,
        lambda: call(services, last),
        delete(Frame).where(col(Frame.id) == last),
    )

    with pytest.raises(NotFound):
        await waiting
    orders = await frame_orders(runtime.engine, video_id)
    assert set(orders) == set(frame_ids[:-1])
    assert_contiguous(orders)


async def test_creating_a_frame_in_a_video_deleted_while_waiting_is_not_found(
    services: Services, runtime: Runtime, dialect: str
) -> None:
    video_id, _ = await new_video(services, 2)

    creation = await while_video_is_locked(
        runtime,
        dialect,
        video_id,
        lambda: services.frames.create(video_id, "too late"),
        delete(Video).where(col(Video.id) == video_id),
    )

    with pytest.raises(NotFound):
        await creation
    assert await frame_orders(runtime.engine, video_id) == {}


async def test_deleting_a_frame_twice_at_once_deletes_it_once(
    services: Services, runtime: Runtime
) -> None:
    video_id, frame_ids = await new_video(services, 4)
    target = frame_ids[1]

    results = await asyncio.gather(
        services.frames.delete(target), services.frames.delete(target), return_exceptions=True
    )

    deleted = [result for result in results if not isinstance(result, BaseException)]
    failures = [result for result in results if isinstance(result, BaseException)]
    assert [result.frames for result in deleted] == [1]
    assert len(failures) == 1
    assert isinstance(failures[0], NotFound)
    orders = await frame_orders(runtime.engine, video_id)
    assert set(orders) == set(frame_ids) - {target}
    assert_contiguous(orders)
