"""Lending a running generation's slot while its work waits out a rate limit, whichever runner
holds the slot.

A generation's image calls wait at once or one after another: the first wait lends the slot,
the end of the last takes it back (waiting for a free slot if need be), and a wait that begins
while the slot is being taken back joins it rather than lending again. Lending is best-effort:
when it fails the work waits holding its slot. A wait stopped (a cancel, a shutdown) gives the
slot back at once, without waiting its turn, so the work can record how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from storyframe.domain.jobs import SlotLender

log = logging.getLogger("storyframe.jobs")


class CountedLender(SlotLender):
    def __init__(
        self,
        lend: Callable[[], Awaitable[None]],
        take_back: Callable[[], Awaitable[None]],
        release: Callable[[], Awaitable[None]],
    ) -> None:
        self._lend = lend
        self._take_back = take_back
        self._release = release
        self._waits = 0
        self._lent = False
        self._returning = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def _wait(self) -> AsyncIterator[None]:
        self._waits += 1
        if self._waits == 1 and not self._lent and not self._returning.locked():
            try:
                await self._lend()
                self._lent = True
            except Exception:
                log.warning("a running slot could not be lent; waiting holding it", exc_info=True)
        try:
            yield
        except BaseException:
            self._waits -= 1
            if self._waits == 0 and self._lent:
                self._lent = False
                await asyncio.shield(self._release())
            raise
        self._waits -= 1
        if self._waits == 0:
            async with self._returning:
                if self._lent:
                    try:
                        await self._take_back()
                    finally:
                        self._lent = False

    def lend(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._wait()
