"""The making of a generation's images, from its references to its stored files."""

from __future__ import annotations

import asyncio
import logging
import time

from storyframe.db.tables import Image
from storyframe.domain.errors import ErrorCode
from storyframe.domain.image_provider import (
    CallResult,
    Description,
    ImageCall,
    ProviderError,
    Reference,
)
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
)
from storyframe.services.image_files import (
    ImageRefused,
    inspect_image_async,
)
from storyframe.services.image_places import StoredImage
from storyframe.services.prompts import assemble_prompt
from storyframe.services.temporaries import GENERATED_PREFIX

log = logging.getLogger("storyframe.generation")


class ImageMaker:
    """The images of one generation: the references read and described, the prompt assembled,
    the provider called (the calls at once) and every image checked and stored."""

    def __init__(self, generator: Generator) -> None:
        self._gen = generator

    async def make(self, job: Job, outcome: Outcome) -> None:
        """Describe the references, assemble the prompt (kept in `outcome`) and make the
        images."""
        generation = job.generation
        references = await self._references(job.attachments, outcome)
        description: Description | None = None
        if references:
            vision_started = time.monotonic()
            description = await self._describe(references, outcome)
            outcome.vision_ms = (time.monotonic() - vision_started) * 1000
        final_prompt = assemble_prompt(
            job.message.prompt, job.context_text, description.text if description else None
        )
        outcome.final_prompt = final_prompt
        spec = image_model(generation.model)
        passed = list(references[: spec.max_reference_images])
        outcome.references, outcome.references_sent = len(references), len(passed)
        tasks = [
            asyncio.create_task(
                self._call(
                    ImageCall(
                        prompt=final_prompt,
                        model=spec.name,
                        count=count,
                        size=generation.size,
                        quality=generation.quality,
                        references=passed,
                        caption=job.caption,
                        first_index=first,
                    ),
                    spec,
                    outcome,
                )
            )
            for first, count in split(generation.requested_count, spec.max_images_per_call)
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

    async def _call(self, call: ImageCall, spec: ImageModelSpec, outcome: Outcome) -> None:
        indexes = list(range(call.first_index, call.first_index + call.count))
        try:
            async with self._gen.calls:
                result: CallResult = await self._gen.provider.generate(call)
        except ProviderError as error:
            outcome.fail(indexes, FAILURE_CODES[error.failure], error.message)
            if error.usage is not None:  # answered, without a usable image: billed all the same
                outcome.add_usage(error.usage, spec.estimate(error.usage, 0, call.quality))
            return
        except Exception:
            # A fault of ours or an answer nobody foresaw: it costs this call's images, not the
            # images other calls have made.
            log.exception("an image call failed unexpectedly", extra={"indexes": indexes})
            outcome.fail(indexes, ErrorCode.PROVIDER_ERROR, "the image call failed unexpectedly")
            return
        made = result.images[: call.count]
        outcome.add_usage(result.usage, spec.estimate(result.usage, len(made), call.quality))

        async def store(index: int, data: bytes) -> None:
            storing = asyncio.ensure_future(self._store(data))
            try:
                # Shielded: a put under way ends, and its file is then released (below), rather
                # than being left in storage unrecorded.
                stored = await asyncio.shield(storing)
            except asyncio.CancelledError:
                # Held like a generation, so that a drain waits for the put and its release.
                self._gen.keep(asyncio.ensure_future(self._release_late(storing)))
                raise
            except ImageRefused as refusal:
                outcome.fail([index], ErrorCode.PROVIDER_ERROR, f"unusable image: {refusal}")
                return
            except Exception:
                log.exception("a generated image could not be stored", extra={"index": index})
                outcome.fail([index], ErrorCode.STORAGE_FAILED, "the image could not be stored")
                return
            outcome.stored.append((index, stored))
            if outcome.first_image_ms is None:
                outcome.first_image_ms = outcome.elapsed_ms()

        # Checking, thumbnailing and storing run in threads: the images of a call go together.
        await asyncio.gather(
            *(store(index, produced.data) for index, produced in zip(indexes, made, strict=False))
        )
        missing = indexes[len(made) :]
        if missing:
            outcome.fail(missing, ErrorCode.PROVIDER_ERROR, "the provider returned fewer images")

    async def _release_late(self, storing: asyncio.Future[StoredImage]) -> None:
        """Release the file of an image stored after its generation stopped waiting for it."""
        try:
            stored = await storing
        except Exception:  # refused or failed: nothing was stored
            return
        await self._gen.media.files.release({stored.storage_key})

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


def split(count: int, per_call: int) -> list[tuple[int, int]]:
    """(first index, images) of each call for `count` images at most `per_call` a call."""
    per_call = max(1, per_call)
    return [(first, min(per_call, count - first)) for first in range(0, count, per_call)]
