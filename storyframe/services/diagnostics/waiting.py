"""Waiting, bounded, for a job's row to reach a final state: read again whenever an event says
something changed, and at least every few moments should events not come (in a process without
them, or across processes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from storyframe.domain.jobs import Events, JobEvent

T = TypeVar("T")


@contextlib.asynccontextmanager
async def woken_by(
    events: Events | None, accepts: Callable[[JobEvent], bool]
) -> AsyncIterator[asyncio.Event]:
    """An event set whenever one of the accepted job events is published, while the block
    runs; never set without `events`."""
    woken = asyncio.Event()
    if events is None:
        yield woken
        return
    async with events.subscribe(accepts) as stream:

        async def listen() -> None:
            async for _ in stream:
                woken.set()

        listening = asyncio.create_task(listen())
        try:
            yield woken
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)


async def until_final(
    read: Callable[[], Awaitable[T]],
    is_final: Callable[[T], bool],
    woken: asyncio.Event,
    seconds: float,
    poll_seconds: float,
) -> T:
    """What `read` gives once `is_final` holds of it, or when `seconds` have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        woken.clear()
        row = await read()
        left = deadline - loop.time()
        if is_final(row) or left <= 0:
            return row
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), min(poll_seconds, left))
