"""The Subscription root: generations' progress, over `graphql-transport-ws`.

A subscriber gets the current state first (one STATE event per generation, read after the
subscription has started listening, so no change falls between), then every change as it
happens. Each event carries the generation as it is after the change, read through the API
like any query, so a field asked of it has its usual meaning.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

import strawberry

from storyframe.db import tables
from storyframe.domain import jobs
from storyframe.domain.errors import DomainError, ErrorCode, LimitReached, NotFound
from storyframe.schema.generation import Generation, GenerationEvent, GenerationPreview
from storyframe.schema.ids import decode_pk
from storyframe.schema.request_context import Info_
from storyframe.services.generation.outcome import UNFINISHED

Initial = Callable[[], Awaitable[list[tables.Generation]]]


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


async def _follow(
    info: Info_,
    accepts: Callable[[jobs.GenerationEvent], bool],
    initial: Initial,
    *,
    single: bool,
) -> AsyncGenerator[GenerationEvent, None]:
    context = info.context
    if context.subscriptions >= context.app.max_subscriptions:
        raise LimitReached(
            f"a connection holds at most {context.app.max_subscriptions} subscriptions",
            ["subscription"],
        )
    events = context.services.generation.generator.events
    if events is None:  # pragma: no cover - every app has them
        raise DomainError(ErrorCode.INVALID, "this server publishes no events")
    reads = context.services.reads
    context.subscriptions += 1
    try:
        async with events.subscribe(accepts) as stream:
            rows = await initial()
            for row in rows:
                yield _event(jobs.EventKind.STATE, row, None)
            if single and all(row.status not in UNFINISHED for row in rows):
                return
            under_way: set[int] = set()
            async for event in stream:
                found = await reads.get_many(tables.Generation, [event.generation_id])
                now = found.get(event.generation_id)
                if now is None:  # deleted with its chat
                    if single:
                        return
                    continue
                if event.kind is not jobs.EventKind.QUEUED:
                    under_way.add(event.generation_id)
                elif event.generation_id in under_way and now.status != "QUEUED":
                    # Sent by the API process that queued it, it crossed a worker's first
                    # events on the way: it says nothing new. (One handed back to the queue
                    # is QUEUED again, and is told.)
                    continue
                # What the loaders hold predates the change.
                context.loaders.clear_all()
                yield _event(event.kind, now, event)
                if single and event.kind is jobs.EventKind.FINISHED:
                    return
    finally:
        context.subscriptions -= 1


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

        def accepts(event: jobs.GenerationEvent) -> bool:
            return event.generation_id == pk and event.owner_id == owner

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

        def accepts(event: jobs.GenerationEvent) -> bool:
            return event.video_id == pk and event.owner_id == owner

        async for event in _follow(info, accepts, initial, single=False):
            yield event
