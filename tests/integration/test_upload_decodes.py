"""How many images (uploaded or generated) are decoded at once: the process's decode slots
(`MAX_CONCURRENT_DECODES`), held by the test through the slots' own `run`, so that what waits
for a slot waits for as long as the test says, on both databases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from storyframe.runtime import Runtime
from storyframe.services.decoding import DecodeSlots
from storyframe.settings import Settings
from tests.support.apps import owned_app
from tests.support.clients import GraphQLClient
from tests.support.generating import generate_ok
from tests.support.polling import until
from tests.support.scenes import seed_video
from tests.support.sql import dump
from tests.support.uploading import image_file, media_files, upload, upload_ok


class Holds:
    """Slots taken by the test: each runs, in a worker thread as a decode does, a wait for the
    test's gate, and keeps its slot until the gate opens."""

    def __init__(self, slots: DecodeSlots) -> None:
        self.slots = slots
        self.gate = threading.Event()
        self.tasks: list[asyncio.Task[bool]] = []

    async def take(self, count: int) -> None:
        busy = self.slots.busy
        self.tasks += [asyncio.create_task(self.slots.run(self.gate.wait)) for _ in range(count)]
        await until(lambda: self.slots.busy == busy + count)

    async def release(self) -> None:
        self.gate.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@asynccontextmanager
async def _app(settings: Settings, decodes: int) -> AsyncIterator[tuple[Runtime, GraphQLClient]]:
    async with owned_app(settings, max_concurrent_decodes=decodes) as owned:
        yield owned.runtime, owned.gql


@asynccontextmanager
async def _holding(slots: DecodeSlots) -> AsyncIterator[Holds]:
    holds = Holds(slots)
    try:
        yield holds
    finally:  # never leave a worker thread waiting on the gate
        await holds.release()


@asynccontextmanager
async def _every_slot_taken(
    settings: Settings, decodes: int
) -> AsyncIterator[tuple[Runtime, GraphQLClient, Holds]]:
    """An app with `decodes` decode slots, every one of them taken by the test."""
    async with _app(settings, decodes) as (runtime, gql), _holding(runtime.media.decodes) as holds:
        await holds.take(decodes)
        yield runtime, gql, holds


async def test_uploads_wait_while_every_decode_slot_is_taken_then_all_go_through(
    settings: Settings,
) -> None:
    # given three slots (not the default two), all of them taken
    async with _every_slot_taken(settings, decodes=3) as (runtime, gql, holds):
        target = (await seed_video(gql)).context_id
        before = await dump(runtime.engine)

        # when four uploads arrive
        uploads = [
            asyncio.create_task(
                upload_ok(gql.http, target, [image_file(f"{i}.png", color=(i, 90, 200))])
            )
            for i in range(4)
        ]

        # then all four wait for a slot: none decodes, nothing is stored
        await until(lambda: holds.slots.waiting == 4)
        assert holds.slots.busy == 3
        assert not any(task.done() for task in uploads)
        assert await dump(runtime.engine) == before
        assert media_files(settings.media_dir) == []

        # when the slots are freed, then every upload goes through, never past the three slots
        await holds.release()
        images = await asyncio.gather(*uploads)
        assert sorted(len(stored) for stored in images) == [1, 1, 1, 1]
        assert (holds.slots.busy, holds.slots.waiting, holds.slots.most_busy) == (0, 0, 3)


async def test_a_single_slot_lets_one_decode_through_at_a_time(settings: Settings) -> None:
    # given one slot, taken
    async with _every_slot_taken(settings, decodes=1) as (_, gql, holds):
        target = (await seed_video(gql)).project_id

        # when two uploads arrive, then both wait
        uploads = [
            asyncio.create_task(
                upload_ok(gql.http, target, [image_file(f"{i}.png", color=(i,) * 3)])
            )
            for i in range(2)
        ]
        await until(lambda: holds.slots.waiting == 2)

        # when the slot is freed, then they pass one after the other
        await holds.release()
        await asyncio.gather(*uploads)
        assert holds.slots.most_busy == 1


async def test_a_cancelled_decode_keeps_its_slot_until_its_thread_is_done(
    settings: Settings,
) -> None:
    # given the only slot taken by work that is then cancelled, its thread still running
    async with _every_slot_taken(settings, decodes=1) as (_, gql, holds):
        target = (await seed_video(gql)).main_chat_id
        (held,) = holds.tasks
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held

        # when an upload arrives, then it waits: the cancelled work still holds the slot
        uploading = asyncio.create_task(upload(gql.http, target, [image_file("late.png")]))
        await until(lambda: holds.slots.waiting == 1)
        assert holds.slots.busy == 1
        assert not uploading.done()

        # when the thread is done, then the upload goes through
        await holds.release()
        payload: dict[str, Any] = await uploading
        assert payload["userErrors"] == []
        assert len(payload["images"]) == 1


async def test_a_generated_image_waits_for_a_decode_slot_too(settings: Settings) -> None:
    # given one slot, taken
    async with (
        _app(settings, decodes=1) as (runtime, gql),
        _holding(runtime.generator.media.decodes) as holds,
    ):
        slots = runtime.generator.media.decodes
        chat = (await seed_video(gql)).main_chat_id
        await holds.take(1)

        # when a generation makes its image, then it waits for the slot to check it
        generating = asyncio.create_task(generate_ok(gql, "MainChat", chat, "lanterns"))
        await until(lambda: slots.waiting == 1)
        assert not generating.done()

        # when the slot is freed, then the image is checked and stored
        await holds.release()
        payload = await generating
        assert payload["generation"]["status"] == "SUCCEEDED"
        assert slots.most_busy == 1
        assert runtime.generator.media.decodes is runtime.media.decodes
