"""The making of a generation's images, from its references to its stored files.

Each image is its own call by default (a setting batches several into one call where a provider
makes that cheaper): a call's time grows with the images it makes, its stream carries no image
index, and one image per call keeps a failure to its image. Every call's result is handed to the
`Slots` as soon as it is stored, so it is recorded (and shown) while the others still render.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from storyframe.db.tables import Image
from storyframe.domain.errors import ErrorCode
from storyframe.domain.image_provider import (
    CallResult,
    Description,
    ImageCall,
    Partial,
    ProviderError,
    Reference,
    Usage,
)
from storyframe.domain.jobs import Preview
from storyframe.domain.model_catalogue import (
    ImageModelSpec,
    image_model,
    vision_cost,
)
from storyframe.services.generation.generator import Generator
from storyframe.services.generation.outcome import (
    Job,
    Outcome,
)
from storyframe.services.generation.types import (
    FAILURE_CODES,
    ImageFailure,
)
from storyframe.services.image_files import ImageRefused, inspect_image_async
from storyframe.services.image_places import StoredImage
from storyframe.services.prompts import assemble_prompt
from storyframe.services.resized import make_preview
from storyframe.services.temporaries import GENERATED_PREFIX

log = logging.getLogger("storyframe.generation")


class Slots(Protocol):
    """Where the images of a generation go as they are made."""

    async def prompt(
        self,
        final_prompt: str,
        vision_model: str | None,
        usage: Usage | None,
        cost: float | None,
        failures: Sequence[ImageFailure],
    ) -> None:
        """The prompt is assembled (its references read and described, at that cost, with
        these failures): keep it, so a second attempt sends the same prompt without describing
        them again."""

    async def preview(self, index: int, preview: Preview) -> None:
        """A preview of image `index` while it renders."""

    async def made(
        self,
        stored: Sequence[tuple[int, StoredImage]],
        failures: Sequence[ImageFailure],
        usage: Usage | None,
        cost: float | None,
    ) -> None:
        """A call ended: the images it made, stored; those it did not, with why; what it cost.
        Once this returns, the stored images are recorded or their files released."""


class ImageMaker:
    """The images of one generation: the references read and described, the prompt assembled,
    the provider called (the calls at once) and every image checked and stored."""

    def __init__(self, generator: Generator) -> None:
        self._gen = generator

    async def make(self, job: Job, outcome: Outcome, slots: Slots, indexes: list[int]) -> None:
        """Make the images at `indexes`: describe the references and assemble the prompt (kept
        in `outcome`) unless the job already has it, then call the provider."""
        generation = job.generation
        spec = image_model(generation.model)
        references = await self._references(job.attachments, outcome)
        final_prompt = job.final_prompt
        if final_prompt is None:
            description: Description | None = None
            if references:
                vision_started = time.monotonic()
                description = await self._describe(references, outcome)
                outcome.vision_ms = (time.monotonic() - vision_started) * 1000
            final_prompt = assemble_prompt(
                job.message.prompt, job.context_text, description.text if description else None
            )
            if job.attachments:
                usage = description.usage if description else None
                cost = vision_cost(description.model, usage) if description else None
                failures = [f for f in outcome.errors if f.index is None]
                model = description.model if description else None
                await slots.prompt(final_prompt, model, usage, cost, failures)
        outcome.final_prompt = final_prompt
        passed = list(references[: spec.max_reference_images])
        outcome.references, outcome.references_sent = len(references), len(passed)
        per_call = max(1, min(self._gen.images_per_call, spec.max_images_per_call))
        tasks = [
            asyncio.create_task(
                self._call(
                    ImageCall(
                        prompt=final_prompt,
                        model=spec.name,
                        count=len(group),
                        size=generation.size,
                        quality=generation.quality,
                        references=passed,
                        caption=job.caption,
                        first_index=group[0],
                        partial_images=self._gen.partial_images if len(group) == 1 else 0,
                    ),
                    group,
                    spec,
                    outcome,
                    slots,
                )
            )
            for group in groups(indexes, per_call)
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _references(self, attachments: list[Image], outcome: Outcome) -> list[Reference]:
        """The attached images' bytes, made small enough to send (a lost one is reported)."""

        async def read(image: Image) -> Reference | None:
            try:
                data, content_type = await self._gen.read_for_model(image)
            except Exception as error:  # a lost file must not sink the generation
                log.warning(
                    "reference image unreadable",
                    extra={"image_id": image.id, "error": repr(error)},
                )
                outcome.fail([None], ErrorCode.NOT_FOUND, "a reference image could not be read")
                return None
            extension = content_type.rsplit("/", 1)[-1].replace("jpeg", "jpg")
            return Reference(data, content_type, f"reference-{image.id}.{extension}")

        found = await asyncio.gather(*(read(image) for image in attachments))
        return [reference for reference in found if reference is not None]

    async def _describe(self, references: list[Reference], outcome: Outcome) -> Description | None:
        model = self._gen.defaults.vision_model
        try:
            description = await self._gen.provider.describe_references(references, model)
        except ProviderError as error:
            code = FAILURE_CODES[error.failure]
            outcome.fail([None], code, f"the reference images could not be described: {error}")
            return None
        except Exception:  # as for an image call: the images can still be made without it
            log.exception("describing the reference images failed unexpectedly")
            outcome.fail(
                [None], ErrorCode.PROVIDER_ERROR, "the reference images could not be described"
            )
            return None
        outcome.add_usage(description.usage, vision_cost(description.model, description.usage))
        outcome.vision_model = description.model
        return description

    async def _call(
        self,
        call: ImageCall,
        indexes: list[int],
        spec: ImageModelSpec,
        outcome: Outcome,
        slots: Slots,
    ) -> None:
        previews = _Previews(self._gen, slots, indexes[0])
        try:
            async with self._gen.calls:
                if call.partial_images:
                    result: CallResult = await self._gen.provider.generate(call, previews.take)
                else:
                    result = await self._gen.provider.generate(call)
        except ProviderError as error:
            billed = error.usage  # answered, without a usable image: billed all the same
            charge = spec.estimate(billed, 0, call.quality) if billed is not None else None
            refused = _failed(indexes, FAILURE_CODES[error.failure], error.message)
            await self._made(slots, outcome, [], refused, billed, charge)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            # A fault of ours or an answer nobody foresaw: it costs this call's images, not the
            # images other calls have made.
            log.exception("an image call failed unexpectedly", extra={"indexes": indexes})
            failures = _failed(
                indexes, ErrorCode.PROVIDER_ERROR, "the image call failed unexpectedly"
            )
            await self._made(slots, outcome, [], failures, None, None)
            return
        made = result.images[: call.count]
        cost = spec.estimate(result.usage, len(made), call.quality)
        unusable: list[ImageFailure] = []

        async def store(index: int, data: bytes) -> tuple[int, StoredImage] | None:
            try:
                return index, await self._store(data)
            except ImageRefused as refusal:
                unusable.append(
                    ImageFailure(index, ErrorCode.PROVIDER_ERROR, f"unusable image: {refusal}")
                )
            except Exception:
                log.exception("a generated image could not be stored", extra={"index": index})
                unusable.append(
                    ImageFailure(index, ErrorCode.STORAGE_FAILED, "the image could not be stored")
                )
            return None

        storing = asyncio.ensure_future(
            asyncio.gather(
                *(store(index, item.data) for index, item in zip(indexes, made, strict=False))
            )
        )
        try:
            # Shielded: a put under way ends and is recorded (or its file released), rather
            # than being left in storage unrecorded.
            results = await asyncio.shield(storing)
        except asyncio.CancelledError:
            late = asyncio.ensure_future(self._record_late(storing, slots, outcome))
            outcome.late.append(late)  # the run's stop waits for it before recording itself
            self._gen.keep(late)
            raise
        stored = [item for item in results if item is not None]
        missing = indexes[len(made) :]
        unusable.extend(
            _failed(missing, ErrorCode.PROVIDER_ERROR, "the provider returned fewer images")
        )
        await self._made(slots, outcome, stored, unusable, result.usage, cost)

    async def _made(
        self,
        slots: Slots,
        outcome: Outcome,
        stored: list[tuple[int, StoredImage]],
        failures: list[ImageFailure],
        usage: Usage | None,
        cost: float | None,
    ) -> None:
        outcome.add_usage(usage, cost)
        outcome.errors.extend(failures)
        outcome.stored.extend(stored)
        if stored and outcome.first_image_ms is None:
            outcome.first_image_ms = outcome.elapsed_ms()
        recording = asyncio.create_task(slots.made(stored, failures, usage, cost))
        try:
            await asyncio.shield(recording)
        except asyncio.CancelledError:
            self._gen.keep(recording)  # a drain waits for the record
            raise

    async def _record_late(
        self,
        storing: asyncio.Future[list[tuple[int, StoredImage] | None]],
        slots: Slots,
        outcome: Outcome,
    ) -> None:
        """Record the images of a call stored after its generation was stopped: they are paid
        for, so they are kept."""
        try:
            results = await storing
        except Exception:
            return
        stored = [item for item in results if item is not None]
        if stored:
            outcome.stored.extend(stored)
            await slots.made(stored, [], None, None)

    async def _store(self, data: bytes) -> StoredImage:
        """Check the bytes as an upload is checked, then put them in blob storage."""
        path = await asyncio.to_thread(self._gen.media.temporaries.write, data, GENERATED_PREFIX)
        try:
            facts = await inspect_image_async(path, self._gen.media.limits, self._gen.media.decodes)
            blob = await self._gen.media.storage.put(
                path,
                checksum=facts.checksum,
                content_type=facts.content_type,
                thumbnail=facts.thumbnail,
            )
        finally:
            await asyncio.to_thread(path.unlink, True)
        return StoredImage.of(blob, facts, placeholder=self._gen.provider.placeholder)


class _Previews:
    """Turns a call's partial images into previews for its slot. A preview that cannot be made
    is skipped: the image itself still comes."""

    def __init__(self, generator: Generator, slots: Slots, index: int) -> None:
        self._gen = generator
        self._slots = slots
        self._index = index

    async def take(self, partial: Partial) -> None:
        try:
            data, width, height = await self._gen.media.decodes.run(make_preview, partial.data)
        except ImageRefused as refusal:
            log.warning("a preview could not be made", extra={"reason": refusal.reason})
            return
        preview = Preview(data, "image/jpeg", width, height, partial.index)
        await self._slots.preview(self._index, preview)


def _failed(indexes: Sequence[int], code: ErrorCode, message: str) -> list[ImageFailure]:
    return [ImageFailure(index, code, message) for index in indexes]


def groups(indexes: Sequence[int], per_call: int) -> list[list[int]]:
    """The images at `indexes` in calls of at most `per_call` each."""
    return [list(indexes[start : start + per_call]) for start in range(0, len(indexes), per_call)]
