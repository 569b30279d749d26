"""Work that outlives a request: the job queue that runs generations, and the progress events
they publish.

A generation is a row first; a job only carries "run generation X for user Y", and can lose
nothing the row does not already say. Events are small facts (ids, positions, statuses) sent
after the row is written; subscribers read the objects through the API as usual. A preview is
the one exception: it is not written anywhere, so its event carries its (small) image.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeGuard


@dataclass(frozen=True, slots=True)
class Ticket:
    """A row to run (a generation, or an export in the exports' own runner), and the user it
    runs for (whose cap it counts against)."""

    row_id: int
    owner_id: int


class JobQueue(Protocol):
    """Where accepted generations wait for a process to run them."""

    def enqueue(self, ticket: Ticket) -> None:
        """Run the generation when a slot is free. Enqueuing one already queued or running
        changes nothing."""

    def cancel(self, generation_id: int) -> bool:
        """Stop the generation if this queue holds it: taken out of the queue, or its running
        work stopped (it then records itself as cancelled). False when it is not held here."""
        ...

    async def positions(self, generation_ids: Sequence[int]) -> dict[int, int]:
        """The place in the queue from 1 (the next to start) of each of them that waits."""
        ...


class EventKind(StrEnum):
    STATE = "STATE"
    """The generation as it stands, sent first to a new subscriber."""
    QUEUED = "QUEUED"
    STARTED = "STARTED"
    PREVIEW = "PREVIEW"
    IMAGE_STORED = "IMAGE_STORED"
    IMAGE_FAILED = "IMAGE_FAILED"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    """Cancelling a running generation was asked: it ends soon, CANCELLED (or PARTIAL)."""
    FINISHED = "FINISHED"
    """The last event: the generation reached a final status."""


@dataclass(frozen=True, slots=True)
class Preview:
    """A small rendering of an image still being made."""

    data: bytes
    content_type: str
    width: int
    height: int
    sequence: int
    """Which preview of the image this is, from 0."""


@dataclass(frozen=True, slots=True)
class GenerationEvent:
    kind: EventKind
    generation_id: int
    video_id: int
    owner_id: int
    index: int | None = None
    """The image's position among those asked for (PREVIEW, IMAGE_STORED, IMAGE_FAILED)."""
    image_id: int | None = None
    preview: Preview | None = None


class ExportEventKind(StrEnum):
    STATE = "STATE"
    """The export as it stands, sent first to a new subscriber."""
    QUEUED = "QUEUED"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    """It went further (its row says how far)."""
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    """Cancelling it was asked: it ends soon, CANCELLED."""
    FINISHED = "FINISHED"
    """The last event: SUCCEEDED, FAILED or CANCELLED."""


@dataclass(frozen=True, slots=True)
class ExportEvent:
    """A change of an export; its row says the rest."""

    kind: ExportEventKind
    export_id: int
    video_id: int
    owner_id: int


class DiagnosticsEventKind(StrEnum):
    STATE = "STATE"
    """The run as it stands, sent first to a new subscriber."""
    QUEUED = "QUEUED"
    STARTED = "STARTED"
    CHECK_FINISHED = "CHECK_FINISHED"
    """One check has its result (`check_index` says which)."""
    FINISHED = "FINISHED"
    """The last event: every check has its result."""


@dataclass(frozen=True, slots=True)
class DiagnosticsEvent:
    """A change of a diagnostics run; its row says the rest."""

    kind: DiagnosticsEventKind
    run_id: int
    owner_id: int
    check_index: int | None = None

    @property
    def video_id(self) -> None:
        """A run belongs to no video."""
        return None


JobEvent = GenerationEvent | ExportEvent | DiagnosticsEvent

Subscription = AsyncIterator[JobEvent]


def is_generation(event: JobEvent, kind: EventKind | None = None) -> TypeGuard[GenerationEvent]:
    """Whether the event is a generation's (of that kind, when given)."""
    return isinstance(event, GenerationEvent) and (kind is None or event.kind is kind)


def is_export(event: JobEvent, kind: ExportEventKind | None = None) -> TypeGuard[ExportEvent]:
    """Whether the event is an export's (of that kind, when given)."""
    return isinstance(event, ExportEvent) and (kind is None or event.kind is kind)


def subject_of(event: JobEvent) -> dict[str, object]:
    """What the event is about, for the log."""
    if isinstance(event, DiagnosticsEvent):
        return {"kind": event.kind.value, "run_id": event.run_id}
    if isinstance(event, ExportEvent):
        return {"kind": event.kind.value, "export_id": event.export_id}
    return {"kind": event.kind.value, "generation_id": event.generation_id}


class Events(Protocol):
    """Progress events of generations and exports, from whichever process runs them to every
    subscriber."""

    def publish(self, event: JobEvent) -> None:
        """Send the event to the current subscribers; never blocks."""

    def subscribe(
        self, accepts: Callable[[JobEvent], bool]
    ) -> AbstractAsyncContextManager[Subscription]:
        """The events `accepts` takes, from now until the context ends, in the order they were
        published."""
        ...


class JobStore(Protocol):
    """The generations' rows as the job engine sees them, across every owner."""

    async def recover(self, stale_before: datetime) -> list[Ticket]:
        """Every generation a process should run: the QUEUED ones, and the RUNNING ones whose
        process has not said it is alive since `stale_before` (those are put back to QUEUED
        first). Oldest first."""
        ...

    async def is_running(self, generation_id: int) -> bool:
        """Whether the generation is RUNNING (in whichever process)."""
        ...

    async def requeue_stale(self, stale_before: datetime) -> int:
        """Put back to QUEUED the RUNNING generations whose process has not said it is alive
        since `stale_before`; how many."""
        ...

    async def heartbeat(self, generation_ids: Collection[int], now: datetime) -> set[int]:
        """Say that this process is still running these generations; those among them whose
        cancelling was asked for (maybe through another process)."""
        ...


class SlotLender(Protocol):
    """Lends the running slot of the job whose work this is, while it waits."""

    def lend(self) -> AbstractAsyncContextManager[None]: ...


current_lender: ContextVar[SlotLender | None] = ContextVar("storyframe_slot_lender", default=None)
"""Set by a job runner for the work of each job (and the tasks that work starts)."""


@asynccontextmanager
async def slot_lent() -> AsyncIterator[None]:
    """While the work waits on something outside it (a provider's rate limit), its running slot
    may serve another job; it is taken back, waiting its turn if need be, before going on.
    Outside a job (or under a runner that does not lend), nothing happens."""
    lender = current_lender.get()
    if lender is None:
        yield
        return
    async with lender.lend():
        yield
