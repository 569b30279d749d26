"""Waiting for a job's row to end: woken by its events, reading the row again meanwhile when no
events come, and giving up at the bound."""

from __future__ import annotations

import asyncio

from storyframe.domain.jobs import EventKind, GenerationEvent, JobEvent, is_generation
from storyframe.events import EventHub
from storyframe.services.diagnostics.waiting import until_final, woken_by

LONG = 60.0
"""A bound no test reaches unless something is wrong."""


def _finished(event: JobEvent) -> bool:
    return is_generation(event, EventKind.FINISHED) and event.generation_id == 7


async def test_an_event_wakes_the_wait_at_once() -> None:
    hub = EventHub()
    reads: list[str] = []
    status = "RUNNING"
    first_read = asyncio.Event()

    async def read() -> str:
        reads.append(status)
        first_read.set()
        return status

    async with woken_by(hub, _finished) as woken:
        waiting = asyncio.create_task(
            until_final(read, lambda now: now == "SUCCEEDED", woken, LONG, LONG)
        )
        async with asyncio.timeout(LONG):
            await first_read.wait()
        status = "SUCCEEDED"
        hub.publish(GenerationEvent(EventKind.STARTED, 8, 1, 1))  # another's: no wake-up
        hub.publish(GenerationEvent(EventKind.FINISHED, 7, 1, 1))
        async with asyncio.timeout(LONG):
            assert await waiting == "SUCCEEDED"

    assert reads == ["RUNNING", "SUCCEEDED"]


async def test_without_events_the_row_is_read_again_until_it_ends() -> None:
    answers = iter(["QUEUED", "RUNNING", "SUCCEEDED", "never read"])

    async def read() -> str:
        return next(answers)

    async with woken_by(None, _finished) as woken:
        async with asyncio.timeout(LONG):
            ended = await until_final(read, lambda now: now == "SUCCEEDED", woken, LONG, 0.001)

    assert ended == "SUCCEEDED"


async def test_at_the_bound_the_row_is_given_as_it_stands() -> None:
    reads = 0

    async def read() -> str:
        nonlocal reads
        reads += 1
        return "RUNNING"

    async with woken_by(None, _finished) as woken:
        ended = await until_final(read, lambda now: now == "SUCCEEDED", woken, 0.0, LONG)

    assert (ended, reads) == ("RUNNING", 1)
