"""The API suite: the product's own path, through a user's services, in a scratch project of
theirs ("Storyframe diagnostics <time>") that is deleted at the end whatever happened. The
configuration, one generation, one with that image as a reference, an analysis of it, and the
full flow from a video to its PDF storyboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from storyframe.domain.errors import ErrorCode
from storyframe.domain.model_catalogue import image_model
from storyframe.domain.places import Place, PlaceKind
from storyframe.services.diagnostics.costs import cheapest
from storyframe.services.diagnostics.env import DiagnosticsEnv
from storyframe.services.diagnostics.flow import Scratch, full_flow
from storyframe.services.diagnostics.generating import generate
from storyframe.services.diagnostics.provider_checks import (
    EDIT_PROMPT,
    PROMPT,
    QUESTION,
    answered,
    said,
)
from storyframe.services.diagnostics.results import CheckImage, CheckResult, usage_json
from storyframe.services.diagnostics.running import Runner
from storyframe.services.diagnostics.suites import (
    ANALYSIS,
    CONFIGURATION,
    FULL_FLOW,
    GENERATION,
    REFERENCE_GENERATION,
)
from storyframe.services.generation import GenerationRequest
from storyframe.services.generation.types import RETIRING_SOON

if TYPE_CHECKING:
    from storyframe.services.container import Services

__all__ = ["run_api_suite"]


async def run_api_suite(runner: Runner, services: Services) -> None:
    env = runner.env
    scratch = Scratch(env, services)
    made: list[tuple[int, CheckImage]] = []
    try:
        await runner.run(CONFIGURATION, lambda result: _configuration(env, services, result))
        await runner.run(GENERATION, lambda result: _generation(env, scratch, result, made))
        await runner.run(
            REFERENCE_GENERATION, lambda result: _with_reference(env, scratch, result, made[0])
        )
        await runner.run(ANALYSIS, lambda result: _analysis(env, services, result, made[0]))
        await runner.run(FULL_FLOW, lambda result: full_flow(env, scratch, result))
    finally:
        await scratch.delete_quietly()


async def _configuration(env: DiagnosticsEnv, services: Services, result: CheckResult) -> None:
    provider = env.provider
    await services.reads.ping()
    result.response = {
        "provider": provider.name,
        "placeholder": provider.placeholder,
        "imageModel": env.image_model,
        "visionModel": env.vision_model,
        "size": env.defaults.size,
        "quality": env.defaults.quality,
        "storageBackend": env.storage_backend,
        "databaseDialect": env.database_dialect,
    }
    result.estimated_cost_usd = 0.0
    where = f"{env.storage_backend} storage, {env.database_dialect} database answering"
    if provider.placeholder:
        result.detail = f"placeholder images made offline (no OpenAI key); {where}"
        return
    spec = image_model(env.image_model)
    shutdown = spec.shutdown_date
    if shutdown is not None and shutdown <= env.today:
        message = f"{spec.name} was shut down on {shutdown.isoformat()}"
        result.fail(ErrorCode.PROVIDER_MISCONFIGURED.value, message, message)
        return
    if shutdown is not None and shutdown - env.today <= RETIRING_SOON:
        result.warning = f"{spec.name} shuts down on {shutdown.isoformat()}"
    known = "" if spec.known else " (not in the catalogue: one image a call, no references)"
    result.detail = (
        f"{provider.name}, image model {spec.name}{known}, vision model {env.vision_model}; {where}"
    )


async def _generation(
    env: DiagnosticsEnv,
    scratch: Scratch,
    result: CheckResult,
    made: list[tuple[int, CheckImage]],
) -> None:
    chat = await scratch.chat()
    size, quality = cheapest(image_model(env.image_model))
    request = GenerationRequest(chat=chat, prompt=PROMPT, size=size, quality=quality)
    result.request = _generate_input(chat, request)
    generated = await generate(env, scratch.services, request, result)
    image_id, image = generated.images[0]
    made.append((image_id, image))
    result.detail = said(env, f"one {image.width}x{image.height} image, stored and recorded")


async def _with_reference(
    env: DiagnosticsEnv,
    scratch: Scratch,
    result: CheckResult,
    reference: tuple[int, CheckImage],
) -> None:
    chat = await scratch.chat()
    reference_id, reference_image = reference
    size, quality = cheapest(image_model(env.image_model))
    request = GenerationRequest(
        chat=chat,
        prompt=EDIT_PROMPT,
        reference_ids=[reference_id],
        size=size,
        quality=quality,
    )
    result.input_images = [reference_image]
    result.request = _generate_input(chat, request)
    generated = await generate(env, scratch.services, request, result)
    _, image = generated.images[0]
    described = len(generated.final_prompt or "") > len(EDIT_PROMPT)
    how = "; the references' description was added to the prompt" if described else ""
    result.detail = said(env, f"one {image.width}x{image.height} image from a reference{how}")


async def _analysis(
    env: DiagnosticsEnv,
    services: Services,
    result: CheckResult,
    subject: tuple[int, CheckImage],
) -> None:
    image_id, image = subject
    result.input_images = [image]
    result.request = {
        "mutation": "analyzeImages",
        "input": {"imageIds": [image_id], "question": QUESTION},
    }
    analysis = await services.generation.analyze([image_id], QUESTION)
    result.response = {
        "text": analysis.text,
        "model": analysis.model,
        "placeholder": analysis.placeholder,
        "usage": usage_json(analysis.usage),
        "estimatedCostUsd": analysis.estimated_cost_usd,
    }
    result.estimated_cost_usd = 0.0 if env.provider.placeholder else analysis.estimated_cost_usd
    result.detail = answered(env, analysis.model, analysis.text)


def _generate_input(chat: Place, request: GenerationRequest) -> dict[str, Any]:
    """The request as the API's generate mutation would be asked it, with `wait: true`."""
    field = {PlaceKind.FRAME: "frameId", PlaceKind.CONTEXT: "contextId"}.get(
        chat.kind, "mainChatId"
    )
    mutation = {PlaceKind.FRAME: "generateFrameImages", PlaceKind.CONTEXT: "generateContextImages"}
    return {
        "mutation": mutation.get(chat.kind, "generateMainChatImages"),
        "input": {
            field: chat.id,
            "prompt": request.prompt,
            "imageCount": request.image_count,
            "contextImageIds": list(request.reference_ids),
            "size": request.size,
            "quality": request.quality,
            "wait": True,
        },
    }
