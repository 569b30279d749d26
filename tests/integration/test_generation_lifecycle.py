"""A generation outlives its request, is waited for at shutdown, and is never left RUNNING."""

from __future__ import annotations

import asyncio
from asyncio import Task
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlmodel import col

from storyframe.db.repository import SqlUnitOfWork
from storyframe.db.tables import Generation, User
from storyframe.domain.ports import Blob, Doomed
from storyframe.providers.openai import OpenAIProvider
from storyframe.services.deletion import doom_chat_history, doom_files
from storyframe.services.generation import GenerationRequest
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage
from tests.support.fake_openai import IMAGE_OUTPUT_TOKENS, fake_openai_fixture  # noqa: F401
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


async def _generations(stack: OpenAIStack) -> list[Generation]:
    """Every generation record, read straight from the database."""
    async with stack.runtime.sessions() as session:
        return list((await session.scalars(select(Generation))).all())


async def test_a_generation_finishes_when_its_client_goes_away(stack: OpenAIStack) -> None:
    # given
    stack.fake.pause()
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Shot")
    request = asyncio.create_task(
        stack.gql.execute(
            generate_document("Frame"), {"input": {"frameId": frame, "prompt": "owls"}}
        )
    )
    await until(lambda: stack.fake.in_flight == 1)

    # when the client gives up while OpenAI is working
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    stack.fake.resume()
    await stack.runtime.generator.drain(10)

    # then the work was finished and recorded all the same
    (message,) = await chat_messages(stack.gql, frame)
    assert message["generation"]["status"] == "SUCCEEDED"
    assert len(message["images"]) == 1
    assert len(stack.media()) == 1


async def test_shutdown_waits_for_running_generations(stack: OpenAIStack) -> None:
    # given
    stack.fake.latency = 0.3
    video = await seed_video(stack.gql)
    request = asyncio.create_task(
        generate(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2)
    )
    await until(lambda: stack.fake.requests_to("images"))

    # when
    await stack.runtime.generator.drain(10)

    # then the work was done before drain returned
    (generation,) = await _generations(stack)
    assert (generation.status, generation.completed_count) == ("SUCCEEDED", 2)
    payload = await request
    assert payload["generation"]["status"] == "SUCCEEDED"


async def test_shutdown_cancels_what_outlasts_the_wait_and_keeps_what_was_made(
    start: Start,
) -> None:
    # given two one-image calls: the first answered (and stored), the second still running
    stack: OpenAIStack = await start(openai_image_model="compatible-image-model")
    stack.fake.pause(2)
    video = await seed_video(stack.gql)
    request = asyncio.create_task(
        generate(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2)
    )
    await until(lambda: len(stack.fake.requests_to("images")) == 2 and len(stack.media()) == 1)

    # when
    await stack.runtime.generator.drain(0.05)

    # then the user is told
    payload = await request
    assert [e["code"] for e in payload["userErrors"]] == ["CANCELLED"]
    # and the image made (and paid for) is kept, the other reported as cancelled
    (generation,) = await _generations(stack)
    assert generation.status == "PARTIAL"
    assert generation.finished_at is not None
    assert generation.completed_count == 1
    assert [(e["code"], e["message"]) for e in generation.errors] == [
        ("CANCELLED", "stopped by a shutdown")
    ]
    assert generation.output_tokens == IMAGE_OUTPUT_TOKENS  # one call was answered
    assert len(stack.media()) == 1
    (message,) = await chat_messages(stack.gql, video.main_chat_id)
    assert message["prompt"] == "owls"
    assert message["finalPrompt"] == "owls"
    assert len(message["images"]) == 1
    assert message["generation"]["status"] == "PARTIAL"


async def test_shutdown_cancels_a_generation_that_made_nothing_yet_and_records_it(
    stack: OpenAIStack,
) -> None:
    # given a call still running
    stack.fake.pause()
    video = await seed_video(stack.gql)
    request = asyncio.create_task(
        generate(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2)
    )
    await until(lambda: stack.fake.in_flight == 1)

    # when
    await stack.runtime.generator.drain(0.05)

    # then the user is told, and the record says what happened
    payload = await request
    assert [(e["code"], e["message"]) for e in payload["userErrors"]] == [
        ("CANCELLED", "the server stopped before the generation finished; try again")
    ]
    (generation,) = await _generations(stack)
    assert generation.status == "CANCELLED"
    assert generation.finished_at is not None
    assert generation.completed_count == 0
    assert generation.output_tokens is None  # nothing was answered, so nothing billed
    assert stack.media() == []
    (message,) = await chat_messages(stack.gql, video.main_chat_id)
    assert message["prompt"] == "owls"
    assert message["finalPrompt"] == "owls"  # it was sent
    assert message["images"] == []
    assert message["generation"]["status"] == "CANCELLED"


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


async def test_a_chat_deleted_during_generation_leaves_no_files(stack: OpenAIStack) -> None:
    # given a generation at work in a frame
    _, frame, request = await _at_work_in_a_frame(stack)

    # when the frame is deleted before the call returns
    await stack.gql.mutate(
        "mutation($id: ID!) { deleteFrame(input: {id: $id}) { deletedId userErrors { code } } }",
        {"id": frame},
    )
    stack.fake.resume()
    payload = await request

    # then
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
    assert payload["message"] is None
    assert stack.media() == []
    assert await _generations(stack) == []


async def _at_work_in_a_frame(stack: OpenAIStack) -> tuple[SeededVideo, str, Task[Any]]:
    """A video, a frame of it and a request generating two images there, its call under way
    until the test calls `stack.fake.resume()`."""
    stack.fake.pause()
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Shot")
    request = asyncio.create_task(generate(stack.gql, "Frame", frame, "owls", imageCount=2))
    await until(lambda: stack.fake.in_flight == 1)
    return video, frame, request


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # SQLite serialises writes
async def test_a_generation_finishing_during_a_chat_deletion_waits_for_it(
    stack: OpenAIStack,
) -> None:
    # given a generation at work in a frame
    _, frame, request = await _at_work_in_a_frame(stack)
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
    payload = await request

    # then the generation waited, found its chat emptied, and kept no files
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
    assert payload["message"] is None
    assert stack.media() == []
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
    stack: OpenAIStack, deletion: str
) -> None:
    # given a generation at work in a frame
    video, frame, request = await _at_work_in_a_frame(stack)
    target = {"frame": frame, "video": video.id, "project": video.project_id}

    # when, with the video held a moment (as by a frame being added), the generation comes to
    # record its images, and then the deletion starts
    async with stack.runtime.engine.connect() as holder:
        await holder.execute(
            text("SELECT id FROM videos WHERE id = :id FOR NO KEY UPDATE"), {"id": pk_of(video.id)}
        )
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
        await holder.commit()
    payload = await request
    deleted = await deleting

    # then both end without an error, one after the other, and nothing is left behind
    assert "errors" not in deleted, deleted
    assert deleted["data"][deletion]["userErrors"] == []
    if payload["userErrors"]:  # the deletion went first
        assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
    else:  # the generation went first: its images went with the deletion
        assert payload["generation"]["status"] == "SUCCEEDED"
        assert deleted["data"][deletion]["deleted"]["images"] == 2
    assert stack.media() == []
    assert await _generations(stack) == []


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)  # waits on a row lock
async def test_a_shutdown_while_a_generation_records_its_images_leaves_no_broken_image(
    stack: OpenAIStack,
) -> None:
    # given a generation about to record its images, held back by a lock on its video
    video, frame, request = await _at_work_in_a_frame(stack)
    async with stack.runtime.engine.connect() as holder:
        await holder.execute(
            text("SELECT id FROM videos WHERE id = :id FOR NO KEY UPDATE"), {"id": pk_of(video.id)}
        )
        stack.fake.resume()
        await until_waiting_for_locks(stack.runtime.engine, 1)

        # when the server shuts down meanwhile
        await stack.runtime.generator.drain(0.05)
        await holder.commit()

    # then it is recorded once, as stopped, and every image it lists has its file
    payload = await request
    assert [e["code"] for e in payload["userErrors"]] == ["CANCELLED"]
    (generation,) = await _generations(stack)
    assert generation.status == "CANCELLED"
    (message,) = await chat_messages(stack.gql, frame)
    assert message["images"] == []
    assert stack.media() == []


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


async def test_a_request_cancelled_as_it_starts_still_saves_and_finishes_its_work(
    stack: OpenAIStack,
) -> None:
    # given
    video = await seed_video(stack.gql)
    services = stack.runtime.services_for(await _owner_id(stack))
    request = GenerationRequest(
        chat=place_of(video.main_chat_id), prompt="owls", image_count=1, reference_ids=[]
    )
    work = asyncio.create_task(services.generation.generate(request))

    # when the caller goes away while the message is being saved
    await asyncio.sleep(0)
    work.cancel()
    with pytest.raises(asyncio.CancelledError):
        await work
    await stack.runtime.generator.drain(10)

    # then the work was saved and finished all the same
    (message,) = await chat_messages(stack.gql, video.main_chat_id)
    assert message["generation"]["status"] == "SUCCEEDED"
    assert len(message["images"]) == 1


async def _owner_id(stack: OpenAIStack) -> int:
    async with stack.runtime.sessions() as session:
        owner_id = await session.scalar(select(col(User.id)))
    assert owner_id is not None
    return int(owner_id)


async def _age(stack: OpenAIStack, generation_id: int, seconds: float) -> None:
    """Make a generation look as if it had been created (and started) `seconds` ago."""
    async with stack.runtime.sessions() as session:
        generation = await session.get(Generation, generation_id)
        assert generation is not None
        generation.created_at -= timedelta(seconds=seconds)
        if generation.started_at is not None:
            generation.started_at -= timedelta(seconds=seconds)
        await session.commit()


async def _stuck(stack: OpenAIStack, chat_id: str, *, running: bool) -> int:
    """A generation saved and (when `running`) started by a process that then died."""
    services = stack.runtime.services_for(await _owner_id(stack))
    generation_id = await services.generation.prepare(
        GenerationRequest(chat=place_of(chat_id), prompt="owls", image_count=1, reference_ids=[])
    )
    if running:
        async with SqlUnitOfWork(stack.runtime.sessions, await _owner_id(stack))() as repo:
            assert await repo.start_generation(generation_id, datetime.now(UTC))
            await repo.commit()
    return generation_id


async def test_the_sweep_records_generations_a_dead_process_left_unfinished(
    stack: OpenAIStack,
) -> None:
    # given generations left QUEUED and RUNNING long ago, one RUNNING now, one finished long ago
    video = await seed_video(stack.gql)
    sweep = stack.runtime.sweep
    old = sweep.stale_after.total_seconds() + 5
    queued = await _stuck(stack, video.main_chat_id, running=False)
    running = await _stuck(stack, video.main_chat_id, running=True)
    await _age(stack, queued, old)
    await _age(stack, running, old)
    current = await _stuck(stack, video.main_chat_id, running=True)
    late_start = await _stuck(stack, video.main_chat_id, running=False)
    await _age(stack, late_start, old)  # queued long ago, started just now
    async with SqlUnitOfWork(stack.runtime.sessions, await _owner_id(stack))() as repo:
        assert await repo.start_generation(late_start, datetime.now(UTC))
        await repo.commit()
    finished = (await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls"))["generation"]
    await _age(stack, pk_of(finished["id"]), old)

    # when
    interrupted = await sweep.once()

    # then the abandoned ones are failed, and say why
    assert interrupted == [queued, running]
    by_id = {g.id: g for g in await _generations(stack)}
    for generation_id in (queued, running):
        generation = by_id[generation_id]
        assert generation.status == "FAILED"
        assert generation.finished_at is not None
        assert generation.errors == [
            {
                "index": None,
                "code": "INTERRUPTED",
                "message": "the server stopped before the generation finished; try again",
            }
        ]
    assert by_id[current].status == "RUNNING"
    assert by_id[late_start].status == "RUNNING"
    assert by_id[pk_of(finished["id"])].status == "SUCCEEDED"
    messages = await chat_messages(stack.gql, video.main_chat_id)
    statuses = sorted(m["generation"]["status"] for m in messages)
    assert statuses == ["FAILED", "FAILED", "RUNNING", "RUNNING", "SUCCEEDED"]
    # and a second sweep finds nothing more
    assert await sweep.once() == []


async def test_the_server_sweeps_when_it_starts(start: Start) -> None:
    # given a generation a previous run of the server left RUNNING
    stack: OpenAIStack = await start(generation_sweep_seconds=3600)
    video = await seed_video(stack.gql)
    stuck = await _stuck(stack, video.main_chat_id, running=True)
    await _age(stack, stuck, stack.runtime.sweep.stale_after.total_seconds() + 5)
    app = stack.http._transport.app  # type: ignore[attr-defined]

    # when the server starts
    async with app.router.lifespan_context(app):
        await _until_async(lambda: _status(stack, stuck), "FAILED")

    # then
    (generation,) = await _generations(stack)
    assert generation.errors[0]["code"] == "INTERRUPTED"


async def _status(stack: OpenAIStack, generation_id: int) -> str | None:
    async with stack.runtime.sessions() as session:
        generation = await session.get(Generation, generation_id)
        return None if generation is None else generation.status


async def _until_async(read: Any, expected: object, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while await read() != expected:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.02)


async def test_a_generation_the_sweep_gave_up_on_is_recorded_as_it_ends(
    stack: OpenAIStack,
) -> None:
    # given a generation at work that a sweep takes for abandoned (as a process configured with
    # a shorter deadline would)
    stack.fake.pause()
    video = await seed_video(stack.gql)
    request = asyncio.create_task(generate(stack.gql, "MainChat", video.main_chat_id, "owls"))
    await until(lambda: stack.fake.in_flight == 1)
    sweep = stack.runtime.sweep
    later = datetime.now(UTC) + sweep.stale_after + timedelta(seconds=1)
    (swept,) = await sweep.once(later)
    assert await _status(stack, swept) == "FAILED"

    # when it ends after all
    stack.fake.resume()
    payload = await request

    # then what it made is kept, and the record says how it really went
    assert payload["userErrors"] == []
    assert payload["generation"]["status"] == "SUCCEEDED"
    assert payload["generation"]["errors"] == []
    assert len(payload["message"]["images"]) == 1
    assert len(stack.media()) == 1
    (generation,) = await _generations(stack)
    assert (generation.id, generation.status, generation.errors) == (swept, "SUCCEEDED", [])


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
    # and once the put has ended, its file is released, not left unrecorded
    storage.may_finish.set()
    await until(lambda: len(storage.finished) == 1)
    await stack.runtime.generator.drain(5)
    assert stack.media() == []
