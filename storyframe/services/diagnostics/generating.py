"""One generation as the API's generate mutation makes it with `wait: true`: submitted, waited
for (bounded), its images read back from storage, and reported in a check's result."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from storyframe.db.tables import Generation, Image
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.jobs import EventKind, JobEvent, is_generation
from storyframe.services.diagnostics.env import DiagnosticsEnv
from storyframe.services.diagnostics.results import CheckImage, CheckResult
from storyframe.services.diagnostics.waiting import until_final, woken_by
from storyframe.services.generation import GenerationRequest, GenerationStatus
from storyframe.services.generation.outcome import UNFINISHED, nothing_made

if TYPE_CHECKING:
    from storyframe.services.container import Services


@dataclass(frozen=True, slots=True)
class Generated:
    generation: Generation
    images: list[tuple[int, CheckImage]]
    """Each image made, by id, with its bytes as stored."""
    final_prompt: str | None


async def generate(
    env: DiagnosticsEnv, services: Services, request: GenerationRequest, result: CheckResult
) -> Generated:
    """Submit the request and wait for its generation to end; its images, or a DomainError
    saying why none was made. The result gets the generation as its response, its images as
    output and its cost."""
    service = services.generation
    started = time.monotonic()
    submitted = await service.submit(request, None, env.generation_wait_seconds)
    generation = submitted.generation
    generation_id = generation.id
    assert generation_id is not None
    left = env.generation_wait_seconds - (time.monotonic() - started)
    if generation.status in UNFINISHED and left > 0:
        # Without events in this process (or when they were missed), the row says it.
        accepts = partial(_finished, generation_id)
        async with woken_by(service.generator.events, accepts) as woken:
            submitted = await until_final(
                lambda: service.current(generation_id),
                lambda now: now.generation.status not in UNFINISHED,
                woken,
                left,
                env.poll_seconds,
            )
        generation = submitted.generation
    message = submitted.message
    assert message.id is not None
    rows = (await services.reads.images_of_messages([message.id])).get(message.id, [])
    images = [(row.id or 0, await _stored(services, row)) for row in rows]
    response: dict[str, Any] = {
        "message": {
            "id": message.id,
            "prompt": message.prompt,
            "finalPrompt": message.final_prompt,
        },
        "generation": generation_json(generation),
        "images": [{"id": image_id, **image.as_json()} for image_id, image in images],
    }
    result.response = response
    result.output_images = [image for _, image in images]
    result.estimated_cost_usd = 0.0 if env.provider.placeholder else generation.estimated_cost_usd
    if generation.status in UNFINISHED:
        await service.cancel(generation_id)
        raise DomainError(
            ErrorCode.PROVIDER_TIMEOUT,
            f"the generation did not end within {env.generation_wait_seconds:g} s; cancelled",
        )
    if not images:
        error = nothing_made(generation) or DomainError(
            ErrorCode.PROVIDER_ERROR, f"the generation ended {generation.status} with no image"
        )
        raise error
    if generation.status != GenerationStatus.SUCCEEDED.value:
        raise DomainError(ErrorCode.PROVIDER_ERROR, f"the generation ended {generation.status}")
    return Generated(generation, images, message.final_prompt)


def generation_json(generation: Generation) -> dict[str, Any]:
    return {
        "id": generation.id,
        "status": generation.status,
        "provider": generation.provider,
        "model": generation.model,
        "visionModel": generation.vision_model,
        "size": generation.size,
        "quality": generation.quality,
        "requestedCount": generation.requested_count,
        "completedCount": generation.completed_count,
        "errors": list(generation.errors),
        "usage": {
            "inputTextTokens": generation.input_text_tokens,
            "inputImageTokens": generation.input_image_tokens,
            "outputTokens": generation.output_tokens,
        },
        "estimatedCostUsd": generation.estimated_cost_usd,
    }


async def _stored(services: Services, image: Image) -> CheckImage:
    """An image's bytes as stored, read back as a user's browser would fetch them."""
    storage = services.generation.generator.media.storage
    try:
        data = await storage.read(image.storage_key, url=image.url)
    except Exception as error:
        raise DomainError(
            ErrorCode.STORAGE_FAILED, f"image {image.id}'s file could not be read: {error}"
        ) from error
    return CheckImage(image.content_type, data, image.width, image.height)


def _finished(generation_id: int, event: JobEvent) -> bool:
    return is_generation(event, EventKind.FINISHED) and event.generation_id == generation_id
