"""Waiting for what other tasks and threads change: the app's counters, the fakes' requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait until `condition()` holds, at most `seconds`."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - what it reads changes in other tasks or threads
            await asyncio.sleep(0.01)
