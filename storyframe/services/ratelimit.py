"""Sliding-window rate limits, kept in the process: enough where one process serves the API
(SQLite). Several processes on PostgreSQL share `storyframe.db.ratelimits` instead."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from storyframe.domain.ratelimit import RateLimit


class SlidingWindow(RateLimit):
    """At most `limit` events per key within any `window` seconds."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    async def allow(self, key: str) -> bool:
        """Record an event for `key`; False when it is over the limit (and not recorded)."""
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self._window:
            events.popleft()
        if len(events) >= self._limit:
            return False
        events.append(now)
        if len(self._events) > 100_000:
            self._forget_idle(now)
        return True

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, v in self._events.items() if not v or v[-1] <= now - self._window]
        for key in idle:
            del self._events[key]
