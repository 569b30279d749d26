"""Rate limits: how many attempts one key may make within a window, wherever they are counted."""

from __future__ import annotations

from typing import Protocol


class RateLimit(Protocol):
    """At most a number of attempts per key within a sliding window of time."""

    async def allow(self, key: str) -> bool:
        """Record an attempt for `key`; False, recording nothing, when it is over the limit."""
        ...
