"""Where a running generation's images go as they come: each call's images recorded in the
chat in their own transaction, then told to the subscribers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from storyframe.db.tables import Generation, Image, Message
from storyframe.domain.image_provider import Usage
from storyframe.domain.jobs import EventKind, Preview
from storyframe.domain.places import Place
from storyframe.domain.ports import UnitOfWork
from storyframe.services.generation.generator import Generator
from storyframe.services.generation.outcome import Job, add_to_record
from storyframe.services.generation.pipeline import Slots
from storyframe.services.generation.types import GenerationStatus, ImageFailure
from storyframe.services.image_places import StoredImage, place_images


class Recorder(Slots):
    """Records each call's images in the chat as soon as they are stored, and tells the
    subscribers."""

    def __init__(self, uow: UnitOfWork, generator: Generator, job: Job, chat: Place) -> None:
        self._uow = uow
        self._gen = generator
        self._job = job
        self.chat = chat
        self.images: list[Image] = []

    async def prompt(
        self,
        final_prompt: str,
        vision_model: str | None,
        usage: Usage | None,
        cost: float | None,
        failures: Sequence[ImageFailure],
    ) -> None:
        generation_id = self._job.generation.id
        assert generation_id is not None
        async with self._uow() as repo:
            generation = await repo.get(Generation, generation_id)
            message = await repo.get(Message, self._job.message.id or 0)
            if generation is None or message is None:
                return
            if generation.status != GenerationStatus.RUNNING.value:
                return  # ended meanwhile (swept)
            message.final_prompt = final_prompt
            await repo.save(message)
            if vision_model is not None:
                generation.vision_model = vision_model
            add_to_record(generation, usage, cost, failures)
            await repo.save(generation)
            await repo.commit()

    async def preview(self, index: int, preview: Preview) -> None:
        self._gen.announce(EventKind.PREVIEW, self._job.generation, index, preview=preview)

    async def made(
        self,
        stored: Sequence[tuple[int, StoredImage]],
        failures: Sequence[ImageFailure],
        usage: Usage | None,
        cost: float | None,
    ) -> None:
        generation_id = self._job.generation.id
        assert generation_id is not None
        keys = {item.storage_key for _, item in stored}
        images: list[Image] = []
        try:
            async with self._uow() as repo:
                owner = await repo.owner_of(self.chat)
                if owner is not None:
                    # Read after the lock: a deletion of the chat is done, or waits for this.
                    await repo.lock_owner(owner)
                generation = await repo.get(Generation, generation_id)
                if owner is None or generation is None:
                    return  # the chat is gone, and the generation with it
                if generation.status != GenerationStatus.RUNNING.value:
                    return  # ended meanwhile (swept): nothing more goes in
                if stored:
                    slotted = [replace(item, slot=index) for index, item in stored]
                    # Found after the lock, the generation (whose message is in the chat) says
                    # the chat is there, and stays until this commits.
                    images = await place_images(
                        repo, owner, self.chat, slotted, self._job.message.id
                    )
                add_to_record(generation, usage, cost, failures, completed=len(images))
                await repo.save(generation)
                await repo.commit()
                keys.clear()
        finally:
            if keys:  # not recorded: no image row holds the files
                await self._gen.media.files.release(keys)
        self.images.extend(images)
        for (index, _), image in zip(stored, images, strict=True):
            self._gen.announce(EventKind.IMAGE_STORED, generation, index, image.id)
        for failure in failures:
            if failure.index is not None:
                self._gen.announce(EventKind.IMAGE_FAILED, generation, failure.index)
