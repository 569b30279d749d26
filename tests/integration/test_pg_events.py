"""Progress events between processes through PostgreSQL's LISTEN/NOTIFY: two `PostgresEvents`
on one real server, each with connections of its own, as an API process and a worker have.

The tests that stop the server run one of their own, so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
import pytest
from PIL import Image as PillowImage

from storyframe.cli import main
from storyframe.db.engine import create_engine, normalize_url, session_factory
from storyframe.db.migrate import upgrade
from storyframe.db.tables import Generation, MainChat, Message, Project, User, Video
from storyframe.domain.jobs import (
    EventKind,
    GenerationEvent,
    JobEvent,
    Preview,
    Subscription,
    is_generation,
)
from storyframe.events import PostgresEvents
from storyframe.events.previews import delete_stale_previews
from storyframe.events.wire import CHANNEL, asyncpg_dsn
from storyframe.services.generation.generator import event_of as generation_event
from tests.postgres import PostgresServer
from tests.support.polling import until

MAX_PAYLOAD_BYTES = 8000
"""PostgreSQL's limit on a notification's payload."""
DEADLINE_SECONDS = 30.0
"""How long a test waits for what it expects to arrive (reconnecting included)."""


@pytest.fixture
def dialect() -> str:
    """Events cross processes only through PostgreSQL."""
    return "postgresql"


@pytest.fixture
async def own_database_url(own_postgres: PostgresServer) -> str:
    """The own server's database, migrated."""
    url = own_postgres.url
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


@asynccontextmanager
async def running(url: str, **options: Any) -> AsyncIterator[PostgresEvents]:
    """The events of one process, given the database URL as the app has it
    (`postgresql+asyncpg://…`), started; closed afterwards."""
    events = PostgresEvents(normalize_url(url).render_as_string(hide_password=False), **options)
    await events.start()
    try:
        yield events
    finally:
        await events.aclose()


async def a_generation(url: str) -> Generation:
    """A generation's row, with the user, project, video, chat and message it belongs to."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            user = User(email=f"events-{os.urandom(4).hex()}@storyframe.test", password_hash="x")
            session.add(user)
            await session.flush()
            project = Project(owner_id=user.id, name="Harbour")
            session.add(project)
            await session.flush()
            assert project.id is not None
            video = Video(project_id=project.id, name="Dawn")
            session.add(video)
            await session.flush()
            assert video.id is not None
            chat = MainChat(video_id=video.id, name="Main")
            session.add(chat)
            await session.flush()
            message = Message(video_id=video.id, main_chat_id=chat.id, prompt="a lighthouse")
            session.add(message)
            await session.flush()
            assert message.id is not None
            generation = Generation(
                message_id=message.id,
                video_id=video.id,
                owner_id=user.id,
                status="RUNNING",
                provider="placeholder",
                model="placeholder",
                size="1024x1024",
                quality="auto",
                requested_count=2,
            )
            session.add(generation)
            await session.commit()
            await session.refresh(generation)
            return generation
    finally:
        await engine.dispose()


def event_of(
    generation: Generation,
    kind: EventKind,
    index: int | None = None,
    image_id: int | None = None,
    preview: Preview | None = None,
) -> GenerationEvent:
    return generation_event(kind, generation, index, image_id, preview)


def a_preview(sequence: int = 0, size: tuple[int, int] = (512, 384)) -> Preview:
    """A JPEG of noise, which compresses badly: tens of KB, as a real preview is."""
    buffer = io.BytesIO()
    PillowImage.effect_noise(size, 64).convert("RGB").save(buffer, format="JPEG", quality=85)
    return Preview(buffer.getvalue(), "image/jpeg", size[0], size[1], sequence)


TINY_PREVIEW = Preview(b"\xff\xd8\xff\xd9", "image/jpeg", 1, 1, 0)


async def received(stream: Subscription, count: int) -> list[GenerationEvent]:
    """The next `count` events of the subscription."""
    events: list[GenerationEvent] = []
    async with asyncio.timeout(DEADLINE_SECONDS):
        async for event in stream:
            assert isinstance(event, GenerationEvent)
            events.append(event)
            if len(events) == count:
                break
    return events


async def preview_rows(url: str, generation_id: int) -> int:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM generation_previews WHERE generation_id = $1", generation_id
        )
    finally:
        await connection.close()
    return int(count)


async def checkpoint(url: str) -> None:
    """Write what is committed to disk: the servers run with `synchronous_commit=off`, so a
    crash would lose the last moment's transactions (the migrations and the rows seeded)."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


def everything(_event: JobEvent) -> bool:
    return True


# -- across processes ----------------------------------------------------------------------


async def test_a_subscriber_sees_every_event_of_either_process_in_the_order_published(
    database_url: str,
) -> None:
    # given: an API process and a worker, each subscribed to everything
    generation = await a_generation(database_url)
    async with (
        running(database_url) as api,
        running(database_url) as worker,
        api.subscribe(everything) as on_api,
        worker.subscribe(everything) as on_worker,
    ):
        queued = event_of(generation, EventKind.QUEUED)
        run = [
            event_of(generation, EventKind.STARTED),
            *(event_of(generation, EventKind.IMAGE_STORED, i, 1000 + i) for i in range(40)),
            event_of(generation, EventKind.IMAGE_FAILED, 40),
            event_of(generation, EventKind.FINISHED),
        ]

        # when: the API process queues it, then the worker runs it
        api.publish(queued)
        assert await received(on_api, 1) == [queued]
        for event in run:
            worker.publish(event)

        # then: both processes' subscribers get every event, once, in order
        assert await received(on_api, len(run)) == run
        assert await received(on_worker, 1 + len(run)) == [queued, *run]


async def test_events_published_before_start_are_sent_once_started(database_url: str) -> None:
    # given: a process that publishes before its events have started
    generation = await a_generation(database_url)
    early = [event_of(generation, EventKind.QUEUED), event_of(generation, EventKind.STARTED)]
    events = PostgresEvents(normalize_url(database_url).render_as_string(hide_password=False))
    try:
        async with events.subscribe(everything) as stream:
            for event in early:
                events.publish(event)
            assert events.pending == len(early)

            # when
            await events.start()

            # then
            assert await received(stream, len(early)) == early
    finally:
        await events.aclose()


async def test_a_preview_arrives_intact_and_its_row_is_deleted_after_finished(
    database_url: str,
) -> None:
    # given
    generation = await a_generation(database_url)
    assert generation.id is not None
    previews = [a_preview(0), a_preview(1, (300, 200))]
    async with (
        running(database_url) as api,
        running(database_url) as worker,
        api.subscribe(everything) as stream,
    ):
        # when: the worker publishes two previews of the second image
        for preview in previews:
            worker.publish(event_of(generation, EventKind.PREVIEW, 1, preview=preview))
        arrived = await received(stream, 2)

        # then: the API process gets each, bytes and dimensions intact, from its row
        assert [event.preview for event in arrived] == previews
        assert all(len(preview.data) > 10_000 for preview in previews)
        assert arrived == [event_of(generation, EventKind.PREVIEW, 1, preview=p) for p in previews]
        assert await preview_rows(database_url, generation.id) == 2

        # when: the generation finishes
        worker.publish(event_of(generation, EventKind.FINISHED))
        assert await received(stream, 1) == [event_of(generation, EventKind.FINISHED)]

        # then: its previews are deleted (just after FINISHED is sent)
        async with asyncio.timeout(DEADLINE_SECONDS):
            while await preview_rows(database_url, generation.id):  # noqa: ASYNC110
                await asyncio.sleep(0.05)


async def test_a_preview_whose_row_is_gone_is_dropped(database_url: str) -> None:
    # given: a subscriber on a process that hears a preview only after its row is deleted
    generation = await a_generation(database_url)
    async with running(database_url) as api, api.subscribe(everything) as stream:
        connection = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            stale = orjson.dumps(
                {
                    "kind": "PREVIEW",
                    "generation_id": generation.id,
                    "video_id": generation.video_id,
                    "owner_id": generation.owner_id,
                    "index": 0,
                    "preview_id": 999_999,
                }
            ).decode()
            # when: a notification names a preview row that does not exist, then another event
            await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, stale)
            await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, "not an event")
            api.publish(event_of(generation, EventKind.STARTED))

            # then: the subscriber gets the event that follows, and nothing of the others
            assert await received(stream, 1) == [event_of(generation, EventKind.STARTED)]
        finally:
            await connection.close()


async def test_a_notification_stays_small_whatever_the_event(database_url: str) -> None:
    # given: a connection listening as PostgreSQL delivers, and events of the largest ids
    generation = await a_generation(database_url)
    largest = 2**31 - 1
    big = Generation(**{**generation.model_dump(), "video_id": largest, "owner_id": largest})
    preview = a_preview(0, (512, 512))
    assert len(preview.data) > MAX_PAYLOAD_BYTES
    events = [
        event_of(big, EventKind.QUEUED),
        event_of(big, EventKind.STARTED),
        event_of(big, EventKind.PREVIEW, largest, preview=preview),
        event_of(big, EventKind.IMAGE_STORED, largest, largest),
        event_of(big, EventKind.IMAGE_FAILED, largest),
        event_of(big, EventKind.FINISHED),
    ]
    payloads: list[str] = []
    listener = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await listener.add_listener(CHANNEL, lambda *args: payloads.append(args[3]))
        async with running(database_url) as worker, worker.subscribe(everything) as stream:
            # when (FINISHED once the rest arrived: it deletes the preview's row)
            for event in events[:-1]:
                worker.publish(event)
            arrived = await received(stream, len(events) - 1)
            worker.publish(events[-1])
            arrived += await received(stream, 1)
        await until(lambda: len(payloads) == len(events))
    finally:
        await listener.close()

    # then: every payload is a few facts, far below PostgreSQL's limit; the image is not in one
    assert arrived == events
    assert all(len(payload.encode()) < 200 for payload in payloads), payloads
    assert [orjson.loads(p)["kind"] for p in payloads] == [e.kind.value for e in events]
    assert set(orjson.loads(payloads[2])) == {
        "kind",
        "generation_id",
        "video_id",
        "owner_id",
        "index",
        "preview_id",
    }


async def test_a_subscriber_gets_only_what_it_accepts(database_url: str) -> None:
    # given: two generations, and subscribers that take part of their events
    first, second = await a_generation(database_url), await a_generation(database_url)
    published = [
        event_of(first, EventKind.QUEUED),
        event_of(first, EventKind.STARTED),
        event_of(second, EventKind.QUEUED),
        event_of(first, EventKind.FINISHED),
        event_of(second, EventKind.STARTED),
        event_of(second, EventKind.FINISHED),
    ]
    async with (
        running(database_url) as api,
        running(database_url) as worker,
        api.subscribe(lambda e: e.kind is EventKind.FINISHED) as finished,
        api.subscribe(lambda e: is_generation(e) and e.generation_id == second.id) as of_second,
        worker.subscribe(lambda e: is_generation(e) and e.generation_id == first.id) as of_first,
    ):
        # when
        for event in published:
            worker.publish(event)

        # then: each gets what it takes, up to the last event it takes (nothing else between)
        assert await received(finished, 2) == [published[3], published[5]]
        assert await received(of_second, 3) == [published[2], published[4], published[5]]
        assert await received(of_first, 3) == [published[0], published[1], published[3]]


# -- the database goes away ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_events_published_after_the_server_restarts_arrive(
    own_database_url: str,
    own_postgres: PostgresServer,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given: two processes, a subscriber, and an event that arrived
    url = own_database_url
    generation = await a_generation(url)
    caplog.set_level(logging.INFO, logger="storyframe.events")
    async with (
        running(url) as api,
        running(url) as worker,
        api.subscribe(lambda e: e.kind is not EventKind.QUEUED) as stream,
    ):
        worker.publish(event_of(generation, EventKind.STARTED))
        assert await received(stream, 1) == [event_of(generation, EventKind.STARTED)]

        # when: the server stops (as an orderly shutdown or a crash would), and starts again
        await checkpoint(url)
        await asyncio.to_thread(own_postgres.stop, mode)
        await until(lambda: not api.listening and not worker.listening, DEADLINE_SECONDS)
        worker.publish(event_of(generation, EventKind.QUEUED))  # while it is away
        await asyncio.to_thread(own_postgres.start)
        await until(lambda: api.listening and worker.listening, DEADLINE_SECONDS)
        after = [
            event_of(generation, EventKind.PREVIEW, 0, preview=a_preview(0)),
            event_of(generation, EventKind.IMAGE_STORED, 0, 7),
            event_of(generation, EventKind.IMAGE_FAILED, 1),
        ]
        for event in after:
            worker.publish(event)

        # then: the events published afterwards arrive, in order
        assert await received(stream, len(after)) == after
        worker.publish(event_of(generation, EventKind.FINISHED))
        assert await received(stream, 1) == [event_of(generation, EventKind.FINISHED)]

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings, "the outage is logged"
    assert all("cannot reach the database" in message for message in warnings), warnings
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_publishing_while_the_server_is_down_neither_raises_nor_grows_without_bound(
    own_database_url: str, own_postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a process whose database stops
    url = own_database_url
    generation = await a_generation(url)
    caplog.set_level(logging.INFO, logger="storyframe.events")
    events = PostgresEvents(url, max_pending=50, flush_seconds=1.0)
    await events.start()
    assert events.listening
    try:
        await asyncio.to_thread(own_postgres.stop, "fast")
        await until(lambda: not events.listening, DEADLINE_SECONDS)

        # when: it publishes far more than it may hold
        for i in range(5_000):
            events.publish(event_of(generation, EventKind.IMAGE_STORED, i % 4, i))
            events.publish(event_of(generation, EventKind.PREVIEW, 0, preview=TINY_PREVIEW))

        # then: publishing returned every time, and what waits stays bounded
        assert events.pending <= 50
    finally:
        # and closing gives up on what cannot be sent instead of waiting for the database
        async with asyncio.timeout(DEADLINE_SECONDS):
            await events.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert "progress events dropped: too many waiting to be sent" in messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- what a crash leaves ---------------------------------------------------------------------


@pytest.mark.usefixtures("cli_env")
async def test_gc_deletes_stale_previews_and_keeps_fresh_ones(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # given: a preview a crashed worker left two hours ago, and one written just now
    generation = await a_generation(database_url)
    assert generation.id is not None
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        insert = (
            "INSERT INTO generation_previews (generation_id, index, sequence, content_type,"
            " width, height, data, created_at) VALUES ($1, 0, $2, 'image/jpeg', 4, 3, $3,"
            " now() - $4::interval)"
        )
        await connection.execute(insert, generation.id, 0, b"old", timedelta(hours=2))
        await connection.execute(insert, generation.id, 1, b"new", timedelta(0))

        capsys.readouterr()

        # when
        code = await asyncio.to_thread(main, ["gc"])

        # then
        assert code == 0
        assert orjson.loads(capsys.readouterr().out)["removedPreviews"] == 1
        left = await connection.fetch("SELECT data FROM generation_previews")
        assert [bytes(row["data"]) for row in left] == [b"new"]
        assert await delete_stale_previews(database_url, timedelta(hours=1)) == 0
    finally:
        await connection.close()
