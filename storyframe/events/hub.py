"""Progress events within one process: every subscriber gets its own queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from storyframe.domain.jobs import EventKind, JobEvent, Subscription

log = logging.getLogger("storyframe.events")

MAX_PENDING_PREVIEWS = 8
"""Previews waiting for a slow subscriber beyond this are dropped: a newer one follows, and the
stored image replaces them all. Every other event is kept."""


@dataclass(eq=False, slots=True)
class _Subscriber:
    accepts: Callable[[JobEvent], bool]
    queue: asyncio.Queue[JobEvent] = field(default_factory=asyncio.Queue)
    previews: int = 0

    def offer(self, event: JobEvent) -> None:
        if event.kind is EventKind.PREVIEW:
            if self.previews >= MAX_PENDING_PREVIEWS:
                return
            self.previews += 1
        self.queue.put_nowait(event)

    async def events(self) -> AsyncGenerator[JobEvent, None]:
        while True:
            event = await self.queue.get()
            if event.kind is EventKind.PREVIEW:
                self.previews -= 1
            yield event


class EventHub:
    """Publishes to the subscribers of this process. Events published from another thread or
    process are not seen here: the PostgreSQL transport relays those into `publish`."""

    def __init__(self) -> None:
        self._subscribers: set[_Subscriber] = set()

    def publish(self, event: JobEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                if subscriber.accepts(event):
                    subscriber.offer(event)
            except Exception:  # one subscriber's filter must not stop the others
                log.exception("an event subscriber failed", extra={"kind": event.kind.value})

    @asynccontextmanager
    async def subscribe(self, accepts: Callable[[JobEvent], bool]) -> AsyncIterator[Subscription]:
        subscriber = _Subscriber(accepts)
        self._subscribers.add(subscriber)
        events = subscriber.events()
        try:
            yield events
        finally:
            self._subscribers.discard(subscriber)
            await events.aclose()
