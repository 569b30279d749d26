"""The sweep: running generations a stopped process left are recorded as interrupted, where no
process of this deployment's runs generations itself (one that does takes them over)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from storyframe.domain.errors import ErrorCode
from storyframe.domain.jobs import EventKind, GenerationEvent
from storyframe.domain.ports import (
    StaleGenerations,
)
from storyframe.services.generation.generator import Generator
from storyframe.services.generation.types import INTERRUPTED, SWEEP_MARGIN_SECONDS, ImageFailure

log = logging.getLogger("storyframe.generation")


class Sweep:
    """Records as FAILED (`INTERRUPTED`) the running generations no process will finish: those
    whose process stopped (a crash, a kill) without recording them.

    No process works on a generation longer than the generation budget, plus the drain at
    shutdown: a generation still unfinished well after that is abandoned, whichever process
    started it, so several processes may sweep the same database safely.
    """

    def __init__(self, store: StaleGenerations, generator: Generator, drain_seconds: float) -> None:
        self._store = store
        self._clock = generator.clock
        self._events = generator.events
        self.stale_after = timedelta(
            seconds=generator.budget_seconds + drain_seconds + SWEEP_MARGIN_SECONDS
        )

    async def once(self, now: datetime | None = None) -> list[int]:
        """Sweep now; the ids of the generations recorded as interrupted."""
        now = now or self._clock()
        error = ImageFailure(None, ErrorCode.INTERRUPTED, INTERRUPTED)
        swept = await self._store.interrupt(now - self.stale_after, now, [error.as_json()])
        ids = [generation_id for generation_id, _, _ in swept]
        for generation_id, video_id, owner_id in swept:  # their subscribers hear they ended
            if owner_id is not None and self._events is not None:
                self._events.publish(
                    GenerationEvent(EventKind.FINISHED, generation_id, video_id, owner_id)
                )
        if ids:
            log.warning(
                "unfinished generations interrupted",
                extra={"generation_ids": ids, "count": len(ids)},
            )
        return ids

    async def forever(self, interval_seconds: float) -> None:
        """Sweep at once, then every `interval_seconds`, until cancelled."""
        while True:
            try:
                await self.once()
            except Exception:  # the database may be away for a while: try again later
                log.exception("the sweep of unfinished generations failed")
            await asyncio.sleep(interval_seconds)
