"""Progress events across processes, through PostgreSQL's LISTEN/NOTIFY.

With PostgreSQL, generations run in `storyframe worker` processes while their subscribers wait on
API processes. Every process owns one `PostgresEvents`: what it publishes goes out as a NOTIFY
on the events' channel, and everything heard on that channel (its own events included) is handed
to a local `EventHub`, whose subscribers then get it. Nothing is delivered locally without going
through the database, so nothing is delivered twice.

A notification carries the event's small facts as compact JSON (PostgreSQL refuses payloads over
8000 bytes). A preview's image never goes in one: it is written to `generation_previews` and the
notification names its row, which every listening process reads back. The rows of a generation
are deleted once its FINISHED event is sent (a process that reads a preview only after that
drops it: the stored image replaces it); `storyframe gc` deletes those a crash left.

Events are best-effort, as the rows they announce are the record: an event that cannot be sent
while the database is away is logged and dropped, and so are the notifications sent while a
listening connection is being made again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from storyframe.domain.jobs import (
    EventKind,
    GenerationEvent,
    JobEvent,
    Preview,
    Subscription,
    subject_of,
)
from storyframe.events.hub import EventHub
from storyframe.events.previews import delete_previews, notify_with_preview, read_preview
from storyframe.events.wire import (
    CHANNEL,
    CONNECT_TIMEOUT_SECONDS,
    CONNECTION_FAILURES,
    NOTIFY,
    STATEMENT_TIMEOUT_SECONDS,
    asyncpg_dsn,
    close,
    connect,
    facts_of,
    payload_of,
    reason,
)

log = logging.getLogger("storyframe.events")

MAX_PENDING_SENDS = 1000
"""Events waiting to be sent beyond this are dropped: publishing never waits for the database."""
MAX_PENDING_RELAYS = 10_000
"""Notifications heard but not yet handed to the subscribers beyond this are dropped."""
SEND_PATIENCE_SECONDS = 10.0
"""How long an event waits for the database to come back before it is dropped."""
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0
PING_SECONDS = 10.0
"""A listening connection idle this long is asked a `SELECT 1`, so that one silently cut off
(the server's host gone, a network partition) is found and made again."""
FLUSH_SECONDS = 5.0
"""How long closing waits for the events still to be sent."""
START_SECONDS = 10.0
"""How long starting waits for the connections; it then goes on trying in the background."""

_Outgoing = tuple[JobEvent, float]
"""An event to send, and when it was published (`time.monotonic()`)."""


class _Link:
    """Whether one of the connections reaches the database; logged once when that changes."""

    def __init__(self, role: str, consequence: str) -> None:
        self.role = role
        self.consequence = consequence
        self.away = False
        self.dropped = 0

    def failed(self, error: BaseException) -> None:
        if not self.away:
            self.away = True
            log.warning(
                "progress events cannot reach the database",
                extra={
                    "connection": self.role,
                    "meanwhile": self.consequence,
                    "reason": reason(error),
                },
            )

    def answered(self) -> None:
        if self.away:
            self.away = False
            log.info(
                "progress events reach the database again",
                extra={"connection": self.role, "dropped_events": self.dropped},
            )
            self.dropped = 0


class PostgresEvents:
    """The `Events` of a process that shares its generations with others through PostgreSQL.

    `start` opens the connections (one sending, one listening), `aclose` sends what is left for
    a few seconds and closes them; the runtime owns both. `publish` (on the event loop's thread)
    never waits and never raises: events are sent in the order published, by one task, and
    those published before `start` wait for it.
    """

    def __init__(
        self,
        database_url: str,
        channel: str = CHANNEL,
        *,
        max_pending: int = MAX_PENDING_SENDS,
        flush_seconds: float = FLUSH_SECONDS,
        start_seconds: float = START_SECONDS,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._channel = channel
        self._flush_seconds = flush_seconds
        self._start_seconds = start_seconds
        self._hub = EventHub()
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue(max(1, max_pending))
        self._sender: Any = None
        self._sending = _Link("sending", "events wait a few seconds for it, then are dropped")
        self._next_connect = 0.0
        self._reconnect_delay = RECONNECT_MIN_SECONDS
        self._listening = asyncio.Event()
        self._heard = _Link("listening", "events sent meanwhile are not relayed")
        self._overflowing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def pending(self) -> int:
        """Events published and not yet sent (nor dropped)."""
        return self._outbox.qsize()

    @property
    def listening(self) -> bool:
        """Whether notifications are being heard now (not while the connection is made again)."""
        return self._listening.is_set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and begin listening. When the database does not answer within a few seconds,
        the connections are made in the background once it does."""
        if self._tasks or self._closed:
            return
        deadline = time.monotonic() + self._start_seconds
        self._tasks.append(asyncio.create_task(self._listen(), name="storyframe-events-listen"))
        await self._sending_connection(deadline)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self._listening.wait()
        except TimeoutError:
            log.warning("not listening for progress events yet; trying on in the background")
        # Sent once this process listens: it hears what was published before it started.
        self._tasks.append(asyncio.create_task(self._send_all(), name="storyframe-events-send"))

    async def aclose(self) -> None:
        """Send the events still waiting (for a few seconds at most), then stop and close."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            try:
                async with asyncio.timeout(self._flush_seconds):
                    await self._outbox.join()
            except TimeoutError:
                log.warning(
                    "progress events dropped at closing",
                    extra={"dropped_events": self._outbox.qsize()},
                )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._listening.clear()
        if self._sender is not None:
            sender, self._sender = self._sender, None
            await close(sender)

    # -- Events ------------------------------------------------------------------------------

    def publish(self, event: JobEvent) -> None:
        try:
            if self._closed:
                log.debug("progress event after closing", extra={"kind": event.kind.value})
                return
            self._outbox.put_nowait((event, time.monotonic()))
            self._overflowing = False
        except asyncio.QueueFull:
            self._sending.dropped += 1
            if not self._overflowing:  # once until there is room again
                self._overflowing = True
                log.warning(
                    "progress events dropped: too many waiting to be sent",
                    extra=subject_of(event),
                )
        except Exception:  # publishing must never fail the generation that publishes
            log.exception("progress event not published", extra={"kind": event.kind.value})

    def subscribe(
        self, accepts: Callable[[JobEvent], bool]
    ) -> AbstractAsyncContextManager[Subscription]:
        return self._hub.subscribe(accepts)

    # -- sending -----------------------------------------------------------------------------

    async def _send_all(self) -> None:
        while True:
            event, published_at = await self._outbox.get()
            try:
                await self._send_one(event, published_at + SEND_PATIENCE_SECONDS)
            except Exception:  # a bug here must not stop the events that follow
                log.exception("progress event not sent", extra={"kind": event.kind.value})
            finally:
                self._outbox.task_done()

    async def _send_one(self, event: JobEvent, deadline: float) -> None:
        # A connection found broken is made again once: the server may have restarted since.
        for _ in range(2):
            connection = await self._sending_connection(deadline)
            if connection is None:
                break
            try:
                await self._send(connection, event)
            except Exception as error:
                if not self._lost(connection, error):
                    log.exception(
                        "progress event refused by the database",
                        extra=subject_of(event),
                    )
                    return
                self._sending.failed(error)
                self._sender = None
                connection.terminate()
                continue
            if isinstance(event, GenerationEvent) and event.kind is EventKind.FINISHED:
                await self._forget_previews(connection, event.generation_id)
            return
        self._sending.dropped += 1
        log.debug(
            "progress event dropped: the database is away",
            extra=subject_of(event),
        )

    async def _send(self, connection: Any, event: JobEvent) -> None:
        preview = event.preview if isinstance(event, GenerationEvent) else None
        if isinstance(event, GenerationEvent) and preview is not None:
            await notify_with_preview(connection, self._channel, event, preview)
            return
        await connection.execute(
            NOTIFY, self._channel, payload_of(event), timeout=STATEMENT_TIMEOUT_SECONDS
        )

    async def _forget_previews(self, connection: Any, generation_id: int) -> None:
        """Delete a finished generation's previews; what fails here `storyframe gc` deletes."""
        try:
            await delete_previews(connection, generation_id)
        except Exception as error:
            if self._lost(connection, error):
                self._sender = None
                connection.terminate()
            log.warning(
                "previews of a finished generation not deleted",
                extra={"generation_id": generation_id, "reason": reason(error)},
            )

    async def _sending_connection(self, deadline: float) -> Any:
        """The sending connection, made again (at a bounded pace) when it is gone; None when
        the database does not answer before `deadline`."""
        while self._sender is None or self._sender.is_closed():
            self._sender = None
            now = time.monotonic()
            if now >= deadline:
                return None
            if now < self._next_connect:
                await asyncio.sleep(min(self._next_connect, deadline) - now)
                continue
            try:
                self._sender = await connect(
                    self._dsn, min(CONNECT_TIMEOUT_SECONDS, max(0.1, deadline - now))
                )
            except Exception as error:  # the database is away: try again a little later
                self._sending.failed(error)
                self._next_connect = time.monotonic() + self._reconnect_delay
                self._reconnect_delay = min(self._reconnect_delay * 2, RECONNECT_MAX_SECONDS)
                continue
            self._reconnect_delay = RECONNECT_MIN_SECONDS
            self._sending.answered()
        return self._sender

    @staticmethod
    def _lost(connection: Any, error: BaseException) -> bool:
        """Whether the statement failed because the connection did (not because of what it
        asked)."""
        return bool(connection.is_closed()) or isinstance(error, CONNECTION_FAILURES)

    # -- listening ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Hold one listening connection, made again at a bounded pace whenever it is lost."""
        delay = RECONNECT_MIN_SECONDS
        while True:
            try:
                connection = await connect(self._dsn, CONNECT_TIMEOUT_SECONDS)
            except Exception as error:  # the database is away: try again a little later
                self._heard.failed(error)
            else:
                try:
                    await self._hear(connection)
                except Exception as error:
                    self._heard.failed(error)
                finally:
                    if self._listening.is_set():
                        delay = RECONNECT_MIN_SECONDS
                    self._listening.clear()
                    await close(connection)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _hear(self, connection: Any) -> None:
        """Relay what is heard on the connection, in the order it was sent, until the connection
        is lost (which raises)."""
        inbox: asyncio.Queue[str | None] = asyncio.Queue()

        def heard(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            if inbox.qsize() >= MAX_PENDING_RELAYS:
                log.warning("progress event dropped: too many waiting to be relayed")
                return
            inbox.put_nowait(payload)

        def lost(_connection: Any) -> None:
            inbox.put_nowait(None)  # after whatever was heard before

        connection.add_termination_listener(lost)
        await connection.add_listener(self._channel, heard)
        self._listening.set()
        self._heard.answered()
        while True:
            try:
                async with asyncio.timeout(PING_SECONDS):
                    payload = await inbox.get()
            except TimeoutError:
                await connection.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_SECONDS)
                continue
            if payload is None:
                raise ConnectionError("the listening connection was closed")
            await self._relay(connection, payload)

    async def _relay(self, connection: Any, payload: str) -> None:
        try:
            event, preview_id = facts_of(payload)
        except (ValueError, TypeError):
            log.warning(
                "a notification that is not a progress event", extra={"payload": payload[:200]}
            )
            return
        if preview_id is not None and isinstance(event, GenerationEvent):
            preview = await self._read_preview(connection, event, preview_id)
            if preview is None:
                return
            event = dataclasses.replace(event, preview=preview)
        self._hub.publish(event)

    async def _read_preview(
        self, connection: Any, event: GenerationEvent, preview_id: int
    ) -> Preview | None:
        """The preview a notification names; None when its row is gone (the stored image has
        replaced it) or cannot be read."""
        try:
            return await read_preview(connection, preview_id, event.generation_id)
        except Exception as error:
            if self._lost(connection, error):
                raise
            log.exception("a preview could not be read", extra={"preview_id": preview_id})
            return None
