"""`storyframe worker`: runs generations from PostgreSQL's task queue until told to stop.

A worker takes jobs (one per granted generation) through pgqueuer, runs each as a task it can
stop, and every heartbeat says which generations it still runs (hearing of cancellations asked
through any API process), puts back what a dead process left, and grants free slots. Stopping
(SIGTERM) it takes no more jobs, lets running generations finish for a bounded time, then hands
their unfinished images back: their jobs go back to the queue for another worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
from pgqueuer.core.qm import QueueManager
from pgqueuer.domain.errors import RetryRequested
from pgqueuer.domain.models import Job
from pgqueuer.domain.types import Channel
from sqlalchemy.ext.asyncio import AsyncEngine

from storyframe.db.queue_schema import QUEUE_SETTINGS
from storyframe.domain.jobs import EventKind, Events, ExportEvent, GenerationEvent, JobStore
from storyframe.jobs.exports import EXPORT_ENTRYPOINT, ExportJobs, export_ticket_of
from storyframe.jobs.postgres import (
    ENTRYPOINT,
    Running,
    SlotGrants,
    SlotLoans,
    Work,
    queries_on,
    ticket_of,
    wait_or,
)

log = logging.getLogger("storyframe.jobs")

RECONNECT_SECONDS = (0.5, 1, 2, 5)
"""How long a worker waits before connecting to the task queue again, after each failure."""


@dataclass(frozen=True, slots=True)
class ExportWork:
    """How a worker runs exports: their work, their rows, and how many at once across the
    deployment."""

    work: Work
    store: JobStore
    jobs: ExportJobs
    concurrency: int


class Worker:
    def __init__(
        self,
        *,
        dsn: str,
        engine: AsyncEngine,
        grants: SlotGrants,
        store: JobStore,
        events: Events,
        work: Work,
        clock: Callable[[], datetime],
        concurrency: int,
        heartbeat_seconds: float,
        grace_seconds: float,
        record_seconds: float,
        exports: ExportWork | None = None,
    ) -> None:
        self._dsn = dsn
        self._engine = engine
        self._grants = grants
        self._store = store
        self._events = events
        self._work = work
        self._clock = clock
        self._concurrency = max(2, concurrency)
        self._heartbeat = heartbeat_seconds
        self._grace = grace_seconds
        self._record = record_seconds
        self._stop = asyncio.Event()
        self.running = Running(SlotLoans(engine, grants))
        self._exports = exports
        self.exporting = Running()

    def stop(self) -> None:
        """Take no more jobs; `run` returns once running generations are finished or handed
        back."""
        self._stop.set()

    async def run(self) -> None:
        await self.tend_once()
        tending = asyncio.create_task(self._tend())
        hearing = asyncio.create_task(self._hear_cancels())
        try:
            failures = 0
            while not self._stop.is_set():
                try:
                    await self._serve()
                    failures = 0
                except Exception:
                    log.exception("the worker lost the task queue; connecting again")
                    pause = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                    failures += 1
                    await wait_or(self._stop, pause)
            await self._stop_running()
        finally:
            tending.cancel()
            hearing.cancel()
            await asyncio.gather(tending, hearing, return_exceptions=True)

    async def _hear_cancels(self) -> None:
        """Stop a running generation as soon as its cancelling is asked, through any process
        (the heartbeat would find it too, later)."""
        # (an export's kinds are their own enum, of the same names)
        asked = self._events.subscribe(lambda e: e.kind == EventKind.CANCEL_REQUESTED)
        async with asked as stream:
            async for event in stream:
                if isinstance(event, GenerationEvent):
                    self.running.cancel(event.generation_id)
                elif isinstance(event, ExportEvent):
                    self.exporting.cancel(event.export_id)

    async def tend_once(self) -> None:
        """Say which generations this worker runs (cancelling those asked to stop), put back
        to the queue what a stopped process left running, and grant free slots."""
        try:
            now = self._clock()
            for generation_id in await self._store.heartbeat(list(self.running.tasks), now):
                self.running.cancel(generation_id)
            stale_before = now - timedelta(seconds=self._heartbeat * 3)
            await self._store.requeue_stale(stale_before)
            await self._grants.grant_now(self._engine)
            if self._exports is not None:
                exports = self._exports
                for export_id in await exports.store.heartbeat(list(self.exporting.tasks), now):
                    self.exporting.cancel(export_id)
                await exports.store.requeue_stale(stale_before)
                await exports.jobs.enqueue_now(self._engine)
        except Exception:  # the database may be away for a while: try again later
            log.exception("the worker could not reach the database")

    async def _tend(self) -> None:
        while not await wait_or(self._stop, self._heartbeat):
            await self.tend_once()
        # Stopping: keep saying the running ones are alive while they finish.
        while self.running.tasks or self.exporting.tasks:
            await asyncio.sleep(min(self._heartbeat, 1))
            await self.tend_once()

    async def _serve(self) -> None:
        """Take jobs on one connection until stopped, or until the connection fails."""
        connection = await asyncpg.connect(self._dsn)
        try:
            manager = QueueManager(queries_on(connection), channel=Channel(QUEUE_SETTINGS.channel))
            manager.entrypoint(ENTRYPOINT, accepts_context=False)(self._handle)
            extra = 0
            if self._exports is not None:
                extra = self._exports.concurrency
                manager.entrypoint(
                    EXPORT_ENTRYPOINT,
                    concurrency_limit=self._exports.concurrency,
                    accepts_context=False,
                )(self._handle_export)
            serving = asyncio.create_task(
                manager.run(
                    dequeue_timeout=timedelta(seconds=self._heartbeat),
                    batch_size=1,
                    max_concurrent_tasks=self._concurrency + extra,
                    heartbeat_timeout=timedelta(seconds=self._heartbeat * 3),
                    shutdown_on_listener_failure=True,
                )
            )
            stopping = asyncio.create_task(self._stop.wait())
            log.info("worker ready", extra={"concurrency": self._concurrency})
            done, _ = await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
            if serving in done:
                stopping.cancel()
                serving.result()  # raises what stopped it
                raise ConnectionError("the task queue stopped listening")
            manager.shutdown.set()
            await self._stop_running()
            await serving
        finally:
            await connection.close()

    async def _stop_running(self) -> None:
        await asyncio.gather(
            self.running.stop(self._grace, self._record),
            self.exporting.stop(self._grace, self._record),
        )

    async def _handle_export(self, job: Job) -> None:
        assert self._exports is not None
        ticket = export_ticket_of(job.payload)
        if not await self.exporting.run(ticket, self._exports.work):
            raise RetryRequested(reason="the worker stopped; the export goes back to the queue")
        if await self._exports.store.is_running(ticket.row_id):
            # Another process runs it (this job was taken again after a late heartbeat).
            raise RetryRequested(
                delay=timedelta(seconds=self._heartbeat), reason="another process runs the export"
            )

    async def _handle(self, job: Job) -> None:
        ticket = ticket_of(job.payload)
        if not await self.running.run(ticket, self._work):
            raise RetryRequested(reason="the worker stopped; the generation was handed back")
        if await self._store.is_running(ticket.row_id):
            # Another process runs it: its job was taken again because that process's
            # heartbeat came late. The job stays, holding the slot, until the generation ends.
            raise RetryRequested(
                delay=timedelta(seconds=self._heartbeat),
                reason="another process runs the generation",
            )
        try:
            await self._grants.grant_now(self._engine)  # its slot is free
        except Exception:
            log.exception("could not grant the slot a generation freed")
