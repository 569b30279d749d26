"""A generation outlives its request and is never left RUNNING: a shutdown waits for it, then
hands what it has not made back to the queue, for the next process to resume; it can be
cancelled; the sweep fails what a dead process left running."""

from __future__ import annotations

import asyncio
from asyncio import Task
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel import col

from storyframe.db.engine import create_engine, session_factory
from storyframe.db.repository import SqlUnitOfWork
from storyframe.db.tables import Generation, Image, User
from storyframe.domain.jobs import EventKind, GenerationEvent
from storyframe.domain.ports import Blob, Doomed
from storyframe.providers.openai import OpenAIProvider
from storyframe.services.deletion import doom_chat_history, doom_files
from storyframe.services.generation import GenerationRequest
from storyframe.services.generation.types import INTERRUPTED
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage
from tests.support.apps import owned_app
from tests.support.clock import Clock
from tests.support.fake_openai import (
    IMAGE_OUTPUT_TOKENS,
    PARTIAL_OUTPUT_TOKENS,
    FakeOpenAI,
    fake_openai_fixture,  # noqa: F401
)
from tests.support.generating import (
    OpenAIStack,
    Start,
    chat_messages,
    generate,
    generate_document,
    generate_ok,
    openai_stack_fixture,  # noqa: F401
    start_fixture,  # noqa: F401
)
from tests.support.ids import pk_of, place_of
from tests.support.polling import until
from tests.support.scenes import SeededVideo, create_frame, seed_video
from tests.support.sql import until_waiting_for_locks
from tests.support.uploading import originals

STREAMED_OUTPUT_TOKENS = IMAGE_OUTPUT_TOKENS + 2 * PARTIAL_OUTPUT_TOKENS
"""What one image call bills: the image and the two previews it streams by default."""
DEAD_FOR = timedelta(minutes=2)
"""How long ago a process that died last said it was running its generation: long enough for
the next process to take it over (three heartbeats), not for the sweep to fail it."""

CANCEL = """
mutation($id: ID!) {
  cancelGeneration(input: {id: $id}) {
    generation { id status cancelRequested }
    userErrors { field message code }
  }
}
"""
EVENT_SECONDS = 60.0
"""A generous bound for an event on a loaded machine; reached only when it never comes."""


# The running app, and what it has written -------------------------------------------------


@asynccontextmanager
async def _served(
    settings: Settings, fake: FakeOpenAI, *, new_owner: bool = True, **overrides: Any
) -> AsyncIterator[OpenAIStack]:
    """The app on the settings' database against the fake OpenAI, as `start` builds it (the
    owner signed up, or, for a later app on the same database, in); leaving the block shuts it
    down as a server stops."""
    clock = Clock()
    async with owned_app(
        settings,
        new_owner=new_owner,
        clock=clock,
        openai_api_key=SecretStr(fake.api_key),
        openai_base_url=fake.base_url,
        openai_max_retry_wait_seconds=1.0,
        **overrides,
    ) as owned:
        yield OpenAIStack(owned.runtime, owned.http, owned.gql, fake, clock)


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the settings' database, with no app running on it."""
    engine = create_engine(settings.resolved_database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def _rows(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[list[Generation], list[Image]]:
    """Every generation and every image, read straight from the database, oldest first."""
    async with sessions() as session:
        generations = await session.scalars(select(Generation).order_by(col(Generation.id)))
        images = await session.scalars(select(Image).order_by(col(Image.id)))
        return list(generations.all()), list(images.all())


async def _generations(stack: OpenAIStack) -> list[Generation]:
    return (await _rows(stack.runtime.sessions))[0]


async def _images(stack: OpenAIStack) -> list[Image]:
    return (await _rows(stack.runtime.sessions))[1]


async def _stored(settings: Settings) -> tuple[list[Generation], list[Image]]:
    """Every generation and image in the database, while no app runs on it."""
    async with _database(settings) as sessions:
        return await _rows(sessions)


def _slot(image: Image) -> int:
    assert image.slot is not None
    return image.slot


async def _generation(stack: OpenAIStack, generation_id: int) -> Generation:
    async with stack.runtime.sessions() as session:
        generation = await session.get(Generation, generation_id)
    assert generation is not None
    return generation


async def _until_generation(
    stack: OpenAIStack, generation_id: int, done: Callable[[Generation], bool]
) -> Generation:
    """The generation once `done` holds of it (waiting at most 10 s)."""
    async with asyncio.timeout(10):
        while True:
            generation = await _generation(stack, generation_id)
            if done(generation):
                return generation
            await asyncio.sleep(0.02)


async def _until_status(stack: OpenAIStack, generation_id: int, status: str) -> Generation:
    return await _until_generation(stack, generation_id, lambda g: g.status == status)


async def _until_idle(stack: OpenAIStack) -> None:
    """Until the app's runner runs no generation: the one under way has ended, however."""
    await until(lambda: stack.runtime.runner.running == 0)


def _closed_by_their_client(port: int) -> int | None:
    """How many connections to the server on `port` their client has closed while the server
    still holds them open (TCP's CLOSE_WAIT on the server's side); None where the system does
    not tell (Linux's /proc does)."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    closed = 0
    for table in tables:
        lines = table.read_text().splitlines()[1:] if table.exists() else []
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state == "08":
                closed += 1
    return closed


async def _until_its_call_is_closed(stack: OpenAIStack) -> None:
    """Until the image call the fake holds has been given up by the app: its connection
    closed (where the system tells), and, once the fake lets it go on, its answer ended."""
    if _closed_by_their_client(stack.fake.port) is not None:
        await until(lambda: _closed_by_their_client(stack.fake.port) == 1)
    stack.fake.resume()
    await until(lambda: stack.fake.in_flight == 0)


async def _owner_id(stack: OpenAIStack) -> int:
    async with stack.runtime.sessions() as session:
        owner_id = await session.scalar(select(col(User.id)))
    assert owner_id is not None
    return int(owner_id)


async def _shutting_down(stack: OpenAIStack, monkeypatch: pytest.MonkeyPatch) -> Task[None]:
    """The app closing as at the end of its lifespan, once its runner has begun to stop (it
    takes no more work, and waits for what runs)."""
    runner = stack.runtime.runner
    stop = runner.stop
    stopping = asyncio.Event()

    async def noted_stop(grace_seconds: float, record_seconds: float) -> None:
        stopping.set()
        await stop(grace_seconds, record_seconds)

    monkeypatch.setattr(runner, "stop", noted_stop)
    closing = asyncio.create_task(stack.runtime.aclose())
    await until(stopping.is_set)
    return closing


# A client going away ----------------------------------------------------------------------


async def test_a_generation_finishes_when_its_client_goes_away(stack: OpenAIStack) -> None:
    # given a request waiting for its generation, whose call OpenAI holds
    stack.fake.pause()
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Shot")
    request = asyncio.create_task(
        stack.gql.execute(
            generate_document("Frame"),
            {"input": {"frameId": frame, "prompt": "owls", "wait": True}},
        )
    )
    await until(lambda: stack.fake.in_flight == 1)

    # when the client gives up while OpenAI is working
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    (generation,) = await _generations(stack)
    assert (generation.status, generation.cancel_requested) == ("RUNNING", False)
    stack.fake.resume()

    # then the work was finished and recorded all the same
    assert generation.id is not None
    await _until_status(stack, generation.id, "SUCCEEDED")
    (message,) = await chat_messages(stack.gql, frame)
    assert message["generation"]["status"] == "SUCCEEDED"
    assert len(message["images"]) == 1
    assert len(stack.media()) == 1


async def test_a_request_cancelled_once_its_generation_is_saved_leaves_it_to_be_run(
    start: Start,
) -> None:
    # given a server whose runner looks for queued generations every half second
    stack: OpenAIStack = await start(generation_heartbeat_seconds=0.5)
    video = await seed_video(stack.gql)
    services = stack.runtime.services_for(await _owner_id(stack))
    request = GenerationRequest(
        chat=place_of(video.main_chat_id), prompt="owls", image_count=1, reference_ids=[]
    )
    work: list[Task[Any]] = []

    def cancel_once_saved(session: Session) -> None:
        if work and asyncio.current_task() is work[0]:
            work[0].cancel()

    # when the caller goes away as soon as the message and its generation are committed
    event.listen(Session, "after_commit", cancel_once_saved)
    try:
        work.append(asyncio.create_task(services.generation.submit(request)))
        with pytest.raises(asyncio.CancelledError):
            await work[0]
    finally:
        event.remove(Session, "after_commit", cancel_once_saved)

    # then the generation saved is run all the same (handed to the runner, or found by it)
    (generation,) = await _generations(stack)
    assert generation.id is not None
    await _until_status(stack, generation.id, "SUCCEEDED")
    (message,) = await chat_messages(stack.gql, video.main_chat_id)
    assert message["generation"]["status"] == "SUCCEEDED"
    assert len(message["images"]) == 1


# Shutdown and the next process ------------------------------------------------------------


async def test_shutdown_waits_for_running_generations(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two image calls held by OpenAI, on a server that waits long for them at shutdown
    stack: OpenAIStack = await start(generation_shutdown_grace_seconds=60)
    stack.fake.pause()
    video = await seed_video(stack.gql)
    await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2, wait=False)
    await until(lambda: stack.fake.in_flight == 2)

    # when the server shuts down, and OpenAI answers while it waits
    closing = await _shutting_down(stack, monkeypatch)
    stack.fake.resume()
    await closing

    # then the work was done and recorded before the shutdown ended
    (generation,) = await _generations(stack)
    assert (generation.status, generation.completed_count) == ("SUCCEEDED", 2)
    assert generation.attempts == 1
    assert generation.finished_at is not None
    assert len(stack.media()) == 2


async def _stopped_by_a_shutdown(settings: Settings, fake: FakeOpenAI) -> tuple[int, SeededVideo]:
    """A generation of two images, stopped by a server's shutdown once one image was stored
    while OpenAI held the other's call: its id, and its video."""
    fake.pause(2)
    async with _served(settings, fake) as first:
        video = await seed_video(first.gql)
        payload = await generate_ok(
            first.gql, "MainChat", video.main_chat_id, "owls", imageCount=2, wait=False
        )
        generation_id = pk_of(payload["generation"]["id"])
        await _until_generation(first, generation_id, lambda g: g.completed_count == 1)
        await until(lambda: fake.in_flight == 1 and len(fake.requests_to("images")) == 2)
    fake.resume()  # the held call answers a connection closed long since
    return generation_id, video


async def test_a_shutdown_hands_back_what_outlasts_its_grace_and_keeps_what_was_made(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    # given a generation of two images, one stored and the other's call held by OpenAI, when
    # the server shuts down
    generation_id, _ = await _stopped_by_a_shutdown(settings, fake_openai)

    # then, once its grace has passed (the tests' half a second), the generation went back to
    # the queue as it stands
    (generation,), images = await _stored(settings)
    assert generation.id == generation_id
    assert (generation.status, generation.attempts) == ("QUEUED", 0)
    assert generation.cancel_requested is False
    assert generation.finished_at is None
    assert generation.heartbeat_at is None
    assert generation.errors == []  # the unfinished image is no failure: it is still to come
    assert generation.completed_count == 1
    assert generation.output_tokens == STREAMED_OUTPUT_TOKENS  # the call answered, paid for
    # and the image made (and paid for) is kept, with its file
    (image,) = images
    assert image.message_id == generation.message_id
    assert image.slot in (0, 1)
    assert originals(settings.media_dir) == [image.storage_key]


async def test_the_next_process_resumes_a_handed_back_generation_asking_only_what_is_missing(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    # given a generation a shutdown handed back with one of its two images stored
    generation_id, video = await _stopped_by_a_shutdown(settings, fake_openai)
    (kept,) = (await _stored(settings))[1]

    # when the server starts again
    async with _served(settings, fake_openai, new_owner=False) as second:
        generation = await _until_status(second, generation_id, "SUCCEEDED")
        (message,) = await chat_messages(second.gql, video.main_chat_id)

    # then OpenAI was asked once more, for the image not yet made, into its own slot
    calls = fake_openai.requests_to("images")
    assert len(calls) == 3
    assert calls[2].params["n"] == 1
    assert (generation.completed_count, generation.attempts, generation.errors) == (2, 1, [])
    assert generation.output_tokens == 2 * STREAMED_OUTPUT_TOKENS
    images = (await _stored(settings))[1]
    assert sorted(_slot(image) for image in images) == [0, 1]
    assert kept.id in {image.id for image in images}
    assert message["generation"]["status"] == "SUCCEEDED"
    assert len(message["images"]) == 2
    assert len(originals(settings.media_dir)) == 2


async def test_what_waits_in_the_queue_at_a_shutdown_is_run_by_the_next_process(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    # given one generation whose call OpenAI holds, and one waiting for its user's turn
    fake_openai.pause()
    async with _served(settings, fake_openai, generation_running_per_user=1) as first:
        video = await seed_video(first.gql)
        ids = []
        for prompt in ("owls", "larks"):
            payload = await generate_ok(
                first.gql, "MainChat", video.main_chat_id, prompt, wait=False
            )
            ids.append(pk_of(payload["generation"]["id"]))
        await until(lambda: fake_openai.in_flight == 1 and first.runtime.runner.waiting == 1)

    # when the server has stopped
    fake_openai.resume()
    stopped, images = await _stored(settings)
    assert [(g.id, g.status, g.attempts) for g in stopped] == [
        (ids[0], "QUEUED", 0),  # handed back
        (ids[1], "QUEUED", 0),  # never started
    ]
    assert stopped[1].started_at is None
    assert [(g.completed_count, g.errors, g.output_tokens) for g in stopped] == [(0, [], None)] * 2
    assert images == []

    # then the next process runs both
    async with _served(settings, fake_openai, new_owner=False) as second:
        for generation_id in ids:
            await _until_status(second, generation_id, "SUCCEEDED")
    assert len(fake_openai.requests_to("images")) == 3
    assert len(originals(settings.media_dir)) == 2


async def _left_running_by_a_dead_process(
    settings: Settings, fake: FakeOpenAI, attempts: int, dead_for: timedelta = DEAD_FOR
) -> tuple[int, Image]:
    """A generation of two images a process had started for the `attempts`-th time when it died,
    one image stored: its id, and that image."""
    generation_id, _ = await _stopped_by_a_shutdown(settings, fake)
    async with _database(settings) as sessions, sessions() as session:
        generation = await session.get(Generation, generation_id)
        assert generation is not None
        generation.status = "RUNNING"
        generation.attempts = attempts
        generation.heartbeat_at = datetime.now(UTC) - dead_for
        await session.commit()
    (image,) = (await _stored(settings))[1]
    return generation_id, image


@pytest.mark.parametrize("dead_for", [DEAD_FOR, timedelta(days=1)], ids=["minutes", "a-day"])
async def test_a_generation_a_dead_process_left_running_is_resumed_by_the_next(
    settings: Settings, fake_openai: FakeOpenAI, dead_for: timedelta
) -> None:
    # given a generation left RUNNING by a process that died after storing one of its images
    # (a day ago: longer than any generation may take, yet a server that runs generations
    # takes it over rather than failing it)
    generation_id, kept = await _left_running_by_a_dead_process(settings, fake_openai, 1, dead_for)

    # when the server starts again
    async with _served(settings, fake_openai, new_owner=False) as second:
        generation = await _until_status(second, generation_id, "SUCCEEDED")

    # then it was run a second time, for the image not yet made
    assert (generation.attempts, generation.completed_count, generation.errors) == (2, 2, [])
    calls = fake_openai.requests_to("images")
    assert len(calls) == 3
    assert calls[2].params["n"] == 1
    images = (await _stored(settings))[1]
    assert sorted(_slot(image) for image in images) == [0, 1]
    assert kept.id in {image.id for image in images}


async def test_a_generation_already_run_twice_is_not_asked_for_a_third_time(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    # given a generation left RUNNING by a process that died on its second attempt, after
    # storing one of its images
    generation_id, kept = await _left_running_by_a_dead_process(settings, fake_openai, 2)

    # when the server starts again
    async with _served(settings, fake_openai, new_owner=False) as second:
        generation = await _until_status(second, generation_id, "PARTIAL")

    # then it ends with what it made, the other image interrupted, and OpenAI not asked again
    assert (generation.attempts, generation.completed_count) == (3, 1)
    assert generation.finished_at is not None
    assert generation.errors == [
        {"index": 1 - _slot(kept), "code": "INTERRUPTED", "message": INTERRUPTED}
    ]
    assert len(fake_openai.requests_to("images")) == 2
    assert [image.id for image in (await _stored(settings))[1]] == [kept.id]


# Cancelling --------------------------------------------------------------------------------


async def test_cancelling_a_running_generation_ends_it_and_gives_up_its_call(
    stack: OpenAIStack,
) -> None:
    # given a generation whose one image call OpenAI holds, its request waiting for it
    stack.fake.pause()
    video = await seed_video(stack.gql)
    request = asyncio.create_task(generate(stack.gql, "MainChat", video.main_chat_id, "owls"))
    await until(lambda: stack.fake.in_flight == 1)
    (message,) = await chat_messages(stack.gql, video.main_chat_id)

    # when
    answer = await stack.gql.data(CANCEL, {"id": message["generation"]["id"]})
    answer = answer["cancelGeneration"]

    # then it is asked at once, and the generation ends cancelled, as its request is told
    assert answer["userErrors"] == []
    assert answer["generation"]["status"] == "RUNNING"
    assert answer["generation"]["cancelRequested"] is True
    payload = await request
    assert [(e["code"], e["message"]) for e in payload["userErrors"]] == [
        ("CANCELLED", "cancelled")
    ]
    assert payload["generation"]["status"] == "CANCELLED"
    assert [(e["index"], e["code"]) for e in payload["generation"]["errors"]] == [(0, "CANCELLED")]
    assert payload["message"]["images"] == []
    # and the call OpenAI held was given up, nothing made of it
    await _until_its_call_is_closed(stack)
    (generation,) = await _generations(stack)
    assert (generation.status, generation.completed_count) == ("CANCELLED", 0)
    assert generation.finished_at is not None
    assert stack.media() == []


async def test_cancelling_a_running_generation_keeps_the_images_it_stored(
    stack: OpenAIStack,
) -> None:
    # given a generation of two images, one stored and the other's call held by OpenAI
    hold = stack.fake.hold_stream(0, 2)
    video = await seed_video(stack.gql)
    request = asyncio.create_task(
        generate(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2)
    )
    await until(hold.reached.is_set)
    (generation,) = await _generations(stack)
    assert generation.id is not None
    await _until_generation(stack, generation.id, lambda g: g.completed_count == 1)
    (message,) = await chat_messages(stack.gql, video.main_chat_id)

    # when
    answer = await stack.gql.data(CANCEL, {"id": message["generation"]["id"]})

    # then it ends PARTIAL, keeping the image stored, the other cancelled
    assert answer["cancelGeneration"]["userErrors"] == []
    payload = await request
    assert payload["userErrors"] == []
    assert payload["generation"]["status"] == "PARTIAL"
    assert payload["generation"]["completedCount"] == 1
    ((cancelled, code),) = [(e["index"], e["code"]) for e in payload["generation"]["errors"]]
    assert code == "CANCELLED"
    (image,) = payload["message"]["images"]
    await _until_its_call_is_closed(stack)
    (kept,) = await _images(stack)
    assert (_slot(kept), kept.id) == (1 - cancelled, pk_of(image["id"]))
    assert len(stack.media()) == 1


# Time limits and storage ------------------------------------------------------------------


async def test_calls_to_the_provider_may_outlast_the_request_time_limit(start: Start) -> None:
    # given a video, then a server with a 2 s limit on GraphQL requests, and a provider that
    # takes 3 s to answer (the video is made on a server without the short limit, and the limit
    # leaves room for the work before a resolver runs, so a slow machine cannot time out what
    # is not under test)
    video = await seed_video((await start()).gql)
    stack: OpenAIStack = await start(request_timeout_seconds=2.0)
    stack.fake.latency = 3.0

    # when
    payload, status = await asyncio.gather(
        generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls"),
        stack.gql.data("{ openAIStatus { configured error { code } } }"),
    )
    analysis = await stack.gql.data(
        """
        mutation($input: AnalyzeImagesInput!) {
          analyzeImages(input: $input) { analysis { text } userErrors { code } }
        }
        """,
        {"input": {"imageIds": [payload["message"]["images"][0]["id"]], "question": "what?"}},
    )

    # then
    assert payload["generation"]["status"] == "SUCCEEDED"
    assert analysis["analyzeImages"]["userErrors"] == []
    assert status["openAIStatus"] == {"configured": True, "error": None}


class _FlakyStorage(LocalStorage):
    """Local storage that fails on the second file it is given."""

    calls = 0

    async def put(self, source: Path, **kwargs: Any) -> Blob:
        self.calls += 1
        if self.calls == 2:
            raise OSError("disk full")
        return await super().put(source, **kwargs)


async def test_an_image_that_cannot_be_stored_is_reported_and_the_rest_kept(
    start: Start, settings: Settings
) -> None:
    # given storage that fails on the second image it is given
    storage = _FlakyStorage(settings.media_dir, settings.resolved_public_url)
    stack: OpenAIStack = await start(storage=storage)
    video = await seed_video(stack.gql)

    # when
    payload = await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=3)

    # then
    generation = payload["generation"]
    assert generation["status"] == "PARTIAL"
    assert [e["code"] for e in generation["errors"]] == ["STORAGE_FAILED"]
    assert len(payload["message"]["images"]) == 2
    assert len(stack.media()) == 2


async def test_the_app_closes_its_openai_client_at_shutdown(start: Start) -> None:
    # given one client for the whole app, used by a request
    stack: OpenAIStack = await start()
    provider = stack.runtime.generator.provider
    assert isinstance(provider, OpenAIProvider)
    video = await seed_video(stack.gql)
    await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls")
    assert stack.runtime.generator.provider is provider
    assert not provider.client.is_closed()

    # when
    await stack.runtime.aclose()

    # then
    assert provider.client.is_closed()


async def test_a_generation_stops_at_its_budget_and_keeps_what_it_made(start: Start) -> None:
    # given two one-image calls, the second unanswered within the generation's budget
    stack: OpenAIStack = await start(openai_image_model="compatible-image-model")
    stack.runtime.generator.budget_seconds = 3.0
    stack.fake.pause(2)
    video = await seed_video(stack.gql)

    # when
    payload = await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2)

    # then the image answered in time is kept, and the other is reported as timed out (which
    # image's call reached the server first is not fixed)
    generation = payload["generation"]
    assert generation["status"] == "PARTIAL"
    assert generation["completedCount"] == 1
    (error,) = generation["errors"]
    assert error["index"] in (0, 1)
    assert error == {
        "index": error["index"],
        "code": "PROVIDER_TIMEOUT",
        "message": "no image within 3 s",
    }
    assert payload["message"]["finalPrompt"] == "owls"
    assert len(stack.media()) == 1


class _SlowStorage(LocalStorage):
    """Local storage whose put goes on when its caller stops waiting (as a thread does), and
    ends only once allowed to."""

    def __init__(self, root: Path, public_url: str) -> None:
        super().__init__(root, public_url)
        self.may_finish = asyncio.Event()
        self.finished: list[str] = []

    async def put(self, source: Path, **kwargs: Any) -> Blob:
        put = super().put

        async def work() -> Blob:
            await self.may_finish.wait()
            blob = await put(source, **kwargs)
            self.finished.append(blob.key)
            return blob

        return await asyncio.shield(asyncio.ensure_future(work()))


async def test_an_image_stored_after_the_deadline_is_not_left_in_storage(
    start: Start, settings: Settings
) -> None:
    # given storage whose put does not end before the generation's deadline
    storage = _SlowStorage(settings.media_dir, settings.resolved_public_url)
    stack: OpenAIStack = await start(storage=storage)
    stack.runtime.generator.budget_seconds = 2.0
    video = await seed_video(stack.gql)

    # when the deadline passes while the image is being stored
    payload = await generate(stack.gql, "MainChat", video.main_chat_id, "owls")

    # then the image is reported late
    assert [e["code"] for e in payload["userErrors"]] == ["PROVIDER_TIMEOUT"]
    assert payload["generation"]["status"] == "FAILED"
    # and once the put has ended, its file is released, not left unrecorded
    storage.may_finish.set()
    await until(lambda: len(storage.finished) == 1)
    await until(lambda: stack.media() == [])
    assert await _images(stack) == []


# Deleting a chat while it generates -------------------------------------------------------


@asynccontextmanager
async def _video_held(stack: OpenAIStack, video: SeededVideo) -> AsyncIterator[None]:
    """The video's row locked as adding a frame locks it, until the block ends; by a connection
    of its own engine, which outlives the app's (a shutdown disposes of that)."""
    async with _database(stack.runtime.settings) as sessions, sessions() as holder:
        await holder.execute(
            text("SELECT id FROM videos WHERE id = :id FOR NO KEY UPDATE"), {"id": pk_of(video.id)}
        )
        yield
        await holder.commit()


async def _at_work_in_a_frame(stack: OpenAIStack) -> tuple[SeededVideo, str]:
    """A video, a frame of it and a generation of two images there, its calls under way until
    the test calls `stack.fake.resume()`."""
    stack.fake.pause()
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Shot")
    await generate_ok(stack.gql, "Frame", frame, "owls", imageCount=2, wait=False)
    calls = 1 if stack.runtime.settings.generation_images_per_call >= 2 else 2
    await until(lambda: stack.fake.in_flight == calls)
    return video, frame


async def test_a_chat_deleted_during_generation_leaves_no_files(stack: OpenAIStack) -> None:
    # given a generation at work in a frame, each image its own call
    _, frame = await _at_work_in_a_frame(stack)

    # when the frame is deleted before the calls return
    deleted = await stack.gql.mutate(
        "mutation($id: ID!) { deleteFrame(input: {id: $id}) { deletedId userErrors { code } } }",
        {"id": frame},
    )
    assert deleted["userErrors"] == []
    finished = stack.runtime.events.subscribe(lambda e: e.kind is EventKind.FINISHED)
    async with finished as events:
        stack.fake.resume()
        await _until_idle(stack)
        # and whoever waits for it or follows it is told it has ended
        assert (await asyncio.wait_for(anext(events), EVENT_SECONDS)).kind is EventKind.FINISHED

    # then neither image was recorded, nor its file kept
    assert stack.media() == []
    assert await _images(stack) == []
    assert await _generations(stack) == []


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_a_generation_finishing_during_a_chat_deletion_waits_for_it(start: Start) -> None:
    # given a generation at work in a frame, its two images one call
    stack: OpenAIStack = await start(generation_images_per_call=4)
    _, frame = await _at_work_in_a_frame(stack)
    owner_id = await _owner_id(stack)

    # when the frame's history is being cleared, and the generation ends before that commits
    async with SqlUnitOfWork(stack.runtime.sessions, owner_id)() as repo:
        doomed = Doomed()
        await doom_chat_history(repo, doomed, place_of(frame))
        await doom_files(repo, doomed)
        await repo.delete(doomed)
        stack.fake.resume()
        await until_waiting_for_locks(stack.runtime.engine, 1)
        await repo.commit()
    await _until_idle(stack)

    # then the generation waited, found its chat emptied, and kept no files
    assert stack.media() == []
    assert await _images(stack) == []
    assert await _generations(stack) == []


DELETIONS = {
    "clearFrameHistory": ("frame", "ClearHistoryInput"),
    "deleteFrame": ("frame", "DeleteInput"),
    "deleteVideo": ("video", "DeleteInput"),
    "deleteProject": ("project", "DeleteInput"),
}


@pytest.mark.parametrize("deletion", list(DELETIONS))
@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_a_deletion_and_a_generation_finishing_in_it_take_turns(
    start: Start, deletion: str
) -> None:
    # given a generation at work in a frame, its two images one call
    stack: OpenAIStack = await start(generation_images_per_call=4)
    video, frame = await _at_work_in_a_frame(stack)
    target = {"frame": frame, "video": video.id, "project": video.project_id}

    # when, with the video held a moment (as by a frame being added), the generation comes to
    # record its images, and then the deletion starts
    async with _video_held(stack, video):
        stack.fake.resume()
        await until_waiting_for_locks(stack.runtime.engine, 1)
        what, input_type = DELETIONS[deletion]
        deleting = asyncio.create_task(
            stack.gql.execute(
                f"mutation($input: {input_type}!) {{ {deletion}(input: $input) "
                "{ deleted { images } userErrors { code } } }",
                {"input": {"id": target[what]}},
            )
        )
        await until_waiting_for_locks(stack.runtime.engine, 2)
    deleted = await deleting
    await _until_idle(stack)

    # then both end without an error, one after the other, and nothing is left behind: the
    # generation's images went with the deletion, or it found its chat gone
    assert "errors" not in deleted, deleted
    assert deleted["data"][deletion]["userErrors"] == []
    assert deleted["data"][deletion]["deleted"]["images"] in (0, 2)
    assert stack.media() == []
    assert await _images(stack) == []
    assert await _generations(stack) == []


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # waits on a row lock
async def test_a_shutdown_while_a_generation_records_its_images_leaves_no_broken_image(
    start: Start,
) -> None:
    # given a generation about to record its images, held back by a lock on its video
    stack: OpenAIStack = await start(generation_images_per_call=4)
    video, _ = await _at_work_in_a_frame(stack)
    async with _video_held(stack, video):
        stack.fake.resume()
        await until_waiting_for_locks(stack.runtime.engine, 1)

        # when the server shuts down meanwhile
        await stack.runtime.aclose()

    # then it is handed back to the queue, with no image recorded, and no file left
    (generation,) = await _generations(stack)
    assert (generation.status, generation.attempts, generation.completed_count) == (
        "QUEUED",
        0,
        0,
    )
    assert await _images(stack) == []
    await until(lambda: stack.media() == [])


# The sweep --------------------------------------------------------------------------------


async def _age(stack: OpenAIStack, generation_id: int, seconds: float) -> None:
    """Make a generation look as if it had been created (and started, and last said to be
    running) `seconds` ago."""
    async with stack.runtime.sessions() as session:
        generation = await session.get(Generation, generation_id)
        assert generation is not None
        generation.created_at -= timedelta(seconds=seconds)
        if generation.started_at is not None:
            generation.started_at -= timedelta(seconds=seconds)
        if generation.heartbeat_at is not None:
            generation.heartbeat_at -= timedelta(seconds=seconds)
        await session.commit()


async def _stuck(stack: OpenAIStack, chat_id: str, *, running: bool) -> int:
    """A generation saved and (when `running`) started by a process that then died."""
    owner_id = await _owner_id(stack)
    services = stack.runtime.services_for(owner_id)
    generation_id = await services.generation.prepare(
        GenerationRequest(chat=place_of(chat_id), prompt="owls", image_count=1, reference_ids=[])
    )
    if running:
        async with SqlUnitOfWork(stack.runtime.sessions, owner_id)() as repo:
            assert await repo.start_generation(generation_id, datetime.now(UTC))
            await repo.commit()
    return generation_id


async def test_the_sweep_fails_generations_a_dead_process_left_running(start: Start) -> None:
    # given (on a server that leaves generations to workers, so that nothing but the test runs
    # them) generations left QUEUED and RUNNING long ago, one RUNNING now, one started long ago
    # whose process still says it runs it, and one finished long ago
    stack: OpenAIStack = await start(generation_jobs_in_process=False)
    video = await seed_video(stack.gql)
    sweep = stack.runtime.sweep
    old = sweep.stale_after.total_seconds() + 5
    queued = await _stuck(stack, video.main_chat_id, running=False)
    dead = await _stuck(stack, video.main_chat_id, running=True)
    await _age(stack, queued, old)
    await _age(stack, dead, old)
    current = await _stuck(stack, video.main_chat_id, running=True)
    alive = await _stuck(stack, video.main_chat_id, running=True)
    await _age(stack, alive, old)
    async with stack.runtime.sessions() as session:
        generation = await session.get(Generation, alive)
        assert generation is not None
        generation.heartbeat_at = datetime.now(UTC)
        await session.commit()
    finished = await _stuck(stack, video.main_chat_id, running=False)
    owner = stack.runtime.services_for(await _owner_id(stack))
    await owner.generation.run(finished)
    await _age(stack, finished, old)

    # when
    interrupted = await sweep.once()

    # then the one abandoned while running is failed, and says why
    assert interrupted == [dead]
    by_id = {g.id: g for g in await _generations(stack)}
    assert by_id[dead].status == "FAILED"
    assert by_id[dead].finished_at is not None
    assert by_id[dead].errors == [{"index": None, "code": "INTERRUPTED", "message": INTERRUPTED}]
    # and the others are left alone: a queue may be long
    assert by_id[queued].status == "QUEUED"
    assert by_id[current].status == "RUNNING"
    assert by_id[alive].status == "RUNNING"
    assert by_id[finished].status == "SUCCEEDED"
    messages = await chat_messages(stack.gql, video.main_chat_id)
    statuses = sorted(m["generation"]["status"] for m in messages)
    assert statuses == ["FAILED", "QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"]
    # and a second sweep finds nothing more
    assert await sweep.once() == []


async def test_the_server_sweeps_when_it_starts(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    # given a generation a process that died left RUNNING long ago, on servers that leave
    # generations to workers (whose runners would otherwise take it back)
    leave_to_workers: dict[str, Any] = {
        "generation_jobs_in_process": False,
        "generation_sweep_seconds": 3600,
    }
    async with _served(settings, fake_openai, **leave_to_workers) as first:
        video = await seed_video(first.gql)
        stuck = await _stuck(first, video.main_chat_id, running=True)
        await _age(first, stuck, first.runtime.sweep.stale_after.total_seconds() + 5)

    # when the server starts again
    async with _served(settings, fake_openai, new_owner=False, **leave_to_workers) as second:
        generation = await _until_status(second, stuck, "FAILED")

    # then
    assert generation.errors == [{"index": None, "code": "INTERRUPTED", "message": INTERRUPTED}]
    assert fake_openai.requests_to("images") == []


async def test_a_generation_the_sweep_gave_up_on_keeps_its_verdict(stack: OpenAIStack) -> None:
    # given a generation at work that a sweep takes for abandoned (as a process configured with
    # a shorter deadline would)
    stack.fake.pause()
    video = await seed_video(stack.gql)
    payload = await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls", wait=False)
    await until(lambda: stack.fake.in_flight == 1)
    sweep = stack.runtime.sweep
    later = datetime.now(UTC) + sweep.stale_after + timedelta(seconds=1)
    (swept,) = await sweep.once(later)
    assert swept == pk_of(payload["generation"]["id"])

    # when its call ends after all
    finished = stack.runtime.events.subscribe(lambda e: e.kind is EventKind.FINISHED)
    async with finished as events:
        stack.fake.resume()
        await _until_idle(stack)
        # and whoever waits for it or follows it is told it has ended
        heard = await asyncio.wait_for(anext(events), EVENT_SECONDS)
        assert isinstance(heard, GenerationEvent)
        assert heard.generation_id == swept

    # then the image it made comes too late: it is not recorded, and its file is released
    (generation,) = await _generations(stack)
    assert (generation.id, generation.status, generation.completed_count) == (swept, "FAILED", 0)
    assert generation.errors == [{"index": None, "code": "INTERRUPTED", "message": INTERRUPTED}]
    assert await _images(stack) == []
    assert stack.media() == []
