"""The Subscription root: generations' and exports' progress, over `graphql-transport-ws`.

A subscriber gets the current state first (one STATE event per generation, read after the
subscription has started listening, so no change falls between), then every change as it
happens. Each event carries the generation as it is after the change, read through the API
like any query, so a field asked of it has its usual meaning.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

import strawberry

from storyframe.db import tables
from storyframe.domain import jobs
from storyframe.domain.errors import DomainError, ErrorCode, LimitReached, NotFound
from storyframe.domain.exports import UNFINISHED_EXPORTS
from storyframe.domain.pages import MAX_PAGE, PageRequest
from storyframe.schema.diagnostics import DiagnosticsRun, DiagnosticsRunEvent
from storyframe.schema.exports import Export, ExportEvent
from storyframe.schema.generation import Generation, GenerationEvent, GenerationPreview
from storyframe.schema.ids import decode_pk
from storyframe.schema.request_context import Info_
from storyframe.services.generation.outcome import UNFINISHED

Initial = Callable[[], Awaitable[list[tables.Generation]]]
Row = TypeVar("Row")
Sent = TypeVar("Sent")
VideoEvent = Annotated[
    GenerationEvent | ExportEvent,
    strawberry.union(
        "VideoEvent",
        description="A change of one of a video's generations or exports. Their `kind`s are "
        "enums of their own: select one with an alias (`exportKind: kind`).",
    ),
]


def _event(
    kind: jobs.EventKind, row: tables.Generation, event: jobs.GenerationEvent | None
) -> GenerationEvent:
    index = event.index if event is not None else None
    preview = event.preview if event is not None else None
    return GenerationEvent(
        kind=kind,
        generation=Generation.from_row(row),
        index=index,
        image_pk=event.image_id if event is not None else None,
        preview=GenerationPreview.of(index or 0, preview) if preview is not None else None,
    )


class _Generations:
    """Turns a subscription's generation events into what it sends: the generation re-read
    after the change (None when there is nothing to send)."""

    def __init__(self, info: Info_) -> None:
        self._info = info
        self._under_way: set[int] = set()

    async def change(
        self, event: jobs.GenerationEvent
    ) -> tuple[GenerationEvent | None, tables.Generation | None]:
        context = self._info.context
        found = await context.services.reads.get_many(tables.Generation, [event.generation_id])
        now = found.get(event.generation_id)
        if now is None:  # deleted with its chat
            return None, None
        if event.kind is not jobs.EventKind.QUEUED:
            self._under_way.add(event.generation_id)
        elif event.generation_id in self._under_way and now.status != "QUEUED":
            # Sent by the API process that queued it, it crossed a worker's first events on
            # the way: it says nothing new. (One handed back to the queue is QUEUED again, and
            # is told.)
            return None, now
        # What the loaders hold predates the change.
        context.loaders.clear_all()
        return _event(event.kind, now, event), now


@asynccontextmanager
async def following(
    info: Info_, accepts: Callable[[jobs.JobEvent], bool]
) -> AsyncIterator[AsyncIterator[jobs.JobEvent]]:
    """The events `accepts` takes, from now on, counted against the connection's limit."""
    context = info.context
    if context.subscriptions >= context.app.max_subscriptions:
        raise LimitReached(
            f"a connection holds at most {context.app.max_subscriptions} subscriptions",
            ["subscription"],
        )
    events = context.services.generation.generator.events
    if events is None:  # pragma: no cover - every app has them
        raise DomainError(ErrorCode.INVALID, "this server publishes no events")
    context.subscriptions += 1
    try:
        async with events.subscribe(accepts) as stream:
            yield stream
    finally:
        context.subscriptions -= 1


async def _follow(
    info: Info_,
    accepts: Callable[[jobs.JobEvent], bool],
    initial: Initial,
    *,
    single: bool,
) -> AsyncGenerator[GenerationEvent, None]:
    async with following(info, accepts) as stream:
        rows = await initial()
        for row in rows:
            yield _event(jobs.EventKind.STATE, row, None)
        if single and all(row.status not in UNFINISHED for row in rows):
            return
        generations = _Generations(info)
        async for event in stream:
            if not isinstance(event, jobs.GenerationEvent):
                continue
            sent, now = await generations.change(event)
            if now is None and single:
                return
            if sent is None:
                continue
            yield sent
            if single and event.kind is jobs.EventKind.FINISHED:
                return


async def follow_video(
    info: Info_, video_id: int, owner: int
) -> AsyncGenerator[GenerationEvent | ExportEvent, None]:
    """The generations' and exports' events of a video: first the state of those unfinished,
    then every change."""

    def accepts(event: jobs.JobEvent) -> bool:
        return event.video_id == video_id and event.owner_id == owner

    reads = info.context.services.reads
    async with following(info, accepts) as stream:
        if video_id not in await reads.get_many(tables.Video, [video_id]):
            raise NotFound("video", ["videoId"])
        for row in await reads.generations_of_video(video_id, list(UNFINISHED)):
            yield _event(jobs.EventKind.STATE, row, None)
        for export in await reads.exports(video_id, PageRequest(MAX_PAGE)):
            if export.status in UNFINISHED_EXPORTS:
                yield ExportEvent(kind=jobs.ExportEventKind.STATE, export=Export.from_row(export))
        generations = _Generations(info)
        async for event in stream:
            if isinstance(event, jobs.GenerationEvent):
                sent, _ = await generations.change(event)
                if sent is not None:
                    yield sent
                continue
            if isinstance(event, jobs.ExportEvent):
                change, _ = await export_change(info, event)
                if change is not None:
                    yield change


async def export_change(info: Info_, event: jobs.ExportEvent) -> tuple[ExportEvent | None, bool]:
    """The export re-read after the change (None when there is nothing to send), and whether
    it still exists."""
    found = await info.context.services.reads.get_many(tables.Export, [event.export_id])
    now = found.get(event.export_id)
    return (None, False) if now is None else (_export_answer(event, now), True)


def _export_answer(event: jobs.JobEvent | None, row: tables.Export) -> ExportEvent | None:
    """An export's event as sent: its state, or the change (None for a late QUEUED, which
    crossed the worker's first events)."""
    if event is None:
        return ExportEvent(kind=jobs.ExportEventKind.STATE, export=Export.from_row(row))
    assert isinstance(event, jobs.ExportEvent)
    if event.kind is jobs.ExportEventKind.QUEUED and row.status != "QUEUED":
        return None
    return ExportEvent(kind=event.kind, export=Export.from_row(row))


def _run_answer(event: jobs.JobEvent | None, row: tables.DiagnosticRun) -> DiagnosticsRunEvent:
    """A diagnostics run's event as sent: its state, or a change with the check it names."""
    run = DiagnosticsRun.from_row(row)
    if event is None:
        return DiagnosticsRunEvent(kind=jobs.DiagnosticsEventKind.STATE, run=run, check=None)
    assert isinstance(event, jobs.DiagnosticsEvent)
    index = event.check_index
    check = run.checks[index] if index is not None and index < len(run.checks) else None
    return DiagnosticsRunEvent(kind=event.kind, run=run, check=check)


async def _follow_row(
    info: Info_,
    accepts: Callable[[jobs.JobEvent], bool],
    read: Callable[[], Awaitable[Row | None]],
    answer: Callable[[jobs.JobEvent | None, Row], Sent | None],
    *,
    missing: str,
    unfinished: Callable[[Row], bool],
    last: Callable[[jobs.JobEvent], bool],
) -> AsyncIterator[Sent]:
    """One job row's subscription: its state first (NotFound when it does not exist), then,
    while it is unfinished, each event answered with the row re-read after it, until the `last`
    event or until the row is gone (deleted, by itself or with its video)."""
    async with following(info, accepts) as stream:
        found = await read()
        if found is None:
            raise NotFound(missing, ["id"])
        state = answer(None, found)
        if state is not None:
            yield state
        if not unfinished(found):
            return
        async for event in stream:
            now = await read()
            if now is None:
                return
            change = answer(event, now)
            if change is not None:
                yield change
            if last(event):
                return


def _viewer_id(info: Info_) -> int:
    _ = info.context.services  # raises Unauthenticated without a viewer
    assert info.context.viewer is not None
    return info.context.viewer.user_id


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every change of one generation: first its state as it stands, then queued "
        "(with its position), started, a preview of each image while it renders, each image "
        "stored or failed, and FINISHED, after which the subscription completes."
    )
    async def generation_updated(
        self, info: Info_, id: strawberry.ID
    ) -> AsyncGenerator[GenerationEvent, None]:
        pk = decode_pk(id, "Generation", "id")
        owner = _viewer_id(info)

        async def initial() -> list[tables.Generation]:
            found = await info.context.services.reads.get_many(tables.Generation, [pk])
            if pk not in found:
                raise NotFound("generation", ["id"])
            return [found[pk]]

        def accepts(event: jobs.JobEvent) -> bool:
            return (
                jobs.is_generation(event) and event.generation_id == pk and event.owner_id == owner
            )

        async for event in _follow(info, accepts, initial, single=True):
            yield event

    @strawberry.subscription(
        description="The same events for every generation of a video, so a storyboard page "
        "needs one subscription: first the state of those queued or running, then every "
        "change, until the client stops."
    )
    async def video_generations_updated(
        self, info: Info_, video_id: strawberry.ID
    ) -> AsyncGenerator[GenerationEvent, None]:
        pk = decode_pk(video_id, "Video", "videoId")
        owner = _viewer_id(info)

        async def initial() -> list[tables.Generation]:
            reads = info.context.services.reads
            if pk not in await reads.get_many(tables.Video, [pk]):
                raise NotFound("video", ["videoId"])
            return await reads.generations_of_video(pk, list(UNFINISHED))

        def accepts(event: jobs.JobEvent) -> bool:
            return jobs.is_generation(event) and event.video_id == pk and event.owner_id == owner

        async for event in _follow(info, accepts, initial, single=False):
            yield event

    @strawberry.subscription(
        description="A diagnostics run as it goes: its state first, then each check as it "
        "finishes, and FINISHED, after which the subscription completes."
    )
    async def diagnostics_run_updated(
        self, info: Info_, id: strawberry.ID
    ) -> AsyncGenerator[DiagnosticsRunEvent, None]:
        pk = decode_pk(id, "DiagnosticsRun", "id")
        owner = _viewer_id(info)
        reads = info.context.services.reads

        def accepts(event: jobs.JobEvent) -> bool:
            return (
                isinstance(event, jobs.DiagnosticsEvent)
                and event.run_id == pk
                and event.owner_id == owner
            )

        async def read() -> tables.DiagnosticRun | None:
            return (await reads.get_many(tables.DiagnosticRun, [pk])).get(pk)

        async for sent in _follow_row(
            info,
            accepts,
            read,
            _run_answer,
            missing="diagnostics run",
            unfinished=lambda run: run.status in ("QUEUED", "RUNNING"),
            last=lambda event: event.kind is jobs.DiagnosticsEventKind.FINISHED,
        ):
            yield sent

    @strawberry.subscription(
        description="Every change of one export: first its state as it stands, then queued, "
        "started, its progress, and FINISHED (SUCCEEDED, FAILED or CANCELLED), after which the "
        "subscription completes."
    )
    async def export_updated(
        self, info: Info_, id: strawberry.ID
    ) -> AsyncGenerator[ExportEvent, None]:
        pk = decode_pk(id, "Export", "id")
        owner = _viewer_id(info)

        def accepts(event: jobs.JobEvent) -> bool:
            return jobs.is_export(event) and event.export_id == pk and event.owner_id == owner

        async def read() -> tables.Export | None:
            return (await info.context.services.reads.get_many(tables.Export, [pk])).get(pk)

        async for sent in _follow_row(
            info,
            accepts,
            read,
            _export_answer,
            missing="export",
            unfinished=lambda export: export.status in UNFINISHED_EXPORTS,
            last=lambda event: event.kind is jobs.ExportEventKind.FINISHED,
        ):
            yield sent

    @strawberry.subscription(
        description="Every change of a video's generations and exports, in one subscription: "
        "first the state of those queued or running, then each change, until the client "
        "stops. A storyboard page needs only this one."
    )
    async def video_updated(
        self, info: Info_, video_id: strawberry.ID
    ) -> AsyncGenerator[VideoEvent, None]:
        pk = decode_pk(video_id, "Video", "videoId")
        async for event in follow_video(info, pk, _viewer_id(info)):
            yield event
