"""The OPENAI suite: the provider asked directly, as cheaply as it allows. A one-line text
answer, one image (lowest quality, smallest size), a vision answer about that image, an edit
with it as the reference, and whether the configured models are offered and live. Without an
OpenAI key, the same checks run against the placeholder provider, and say so."""

from __future__ import annotations

from typing import Any

from storyframe.domain.image_provider import (
    CallResult,
    Failure,
    ImageCall,
    ProviderError,
    Reference,
)
from storyframe.domain.model_catalogue import image_model, vision_cost
from storyframe.services.diagnostics.costs import cheapest
from storyframe.services.diagnostics.env import DiagnosticsEnv
from storyframe.services.diagnostics.results import CheckImage, CheckResult, one_line, usage_json
from storyframe.services.diagnostics.running import Runner
from storyframe.services.diagnostics.suites import EDIT, IMAGE, MODELS, TEXT, VISION
from storyframe.services.generation.types import RETIRING_SOON

PROMPT = "A plain red circle in the middle of a white background, flat colours."
QUESTION = "Which shape and which colour do you see? Answer in at most six words."
EDIT_PROMPT = "The same red circle, now with a small blue square beside it."
TEXT_PROMPT = "In one short line: which colour is a clear sky at noon?"
OFFLINE = "placeholder provider (no OpenAI key)"


def said(env: DiagnosticsEnv, text: str) -> str:
    """A check's detail, saying when it ran against the placeholder."""
    return f"{OFFLINE}: {text}" if env.provider.placeholder else text


def answered(env: DiagnosticsEnv, model: str, text: str) -> str:
    """A check's detail about a model's answer: the model and the answer's start (the
    placeholder's answers say what they are)."""
    if env.provider.placeholder:
        return said(env, one_line(text, 200))
    return f"{model}: {one_line(text, 200)}"


def endpoint(env: DiagnosticsEnv, name: str) -> dict[str, str]:
    """The OpenAI endpoint a call goes to, for the request shown; none for the placeholder."""
    return {} if env.provider.placeholder else {"endpoint": name}


async def run_provider_suite(runner: Runner) -> None:
    env = runner.env
    made: list[CheckImage] = []
    await runner.run(TEXT, lambda result: _text(env, result))
    await runner.run(IMAGE, lambda result: _image(env, result, made))
    await runner.run(VISION, lambda result: _vision(env, result, made[0]))
    takes = image_model(env.image_model).max_reference_images > 0
    await runner.run(
        EDIT,
        lambda result: _edit(env, result, made[0]),
        skip=None if takes else f"{env.image_model} takes no reference images",
    )
    await runner.run(MODELS, lambda result: _models(env, result))


async def _text(env: DiagnosticsEnv, result: CheckResult) -> None:
    model = env.vision_model
    result.request = {
        **endpoint(env, "POST /chat/completions"),
        "model": model,
        "prompt": TEXT_PROMPT,
    }
    answer = await env.provider.complete(TEXT_PROMPT, model)
    result.response = {
        "model": answer.model,
        "text": answer.text,
        "usage": usage_json(answer.usage),
    }
    result.estimated_cost_usd = _cost(env, vision_cost(answer.model, answer.usage))
    result.detail = answered(env, answer.model, answer.text)


async def _image(env: DiagnosticsEnv, result: CheckResult, made: list[CheckImage]) -> None:
    model = env.image_model
    spec = image_model(model)
    size, quality = cheapest(spec)
    call = ImageCall(prompt=PROMPT, model=model, count=1, size=size, quality=quality)
    result.request = {
        **endpoint(env, "POST /images/generations"),
        "model": model,
        "prompt": PROMPT,
        "n": 1,
        "size": size,
        "quality": quality,
    }
    answer = await env.provider.generate(call)
    image = _answered_image(result, answer)
    result.estimated_cost_usd = _cost(env, spec.estimate(answer.usage, 1, quality))
    made.append(image)
    result.detail = said(env, f"one {image.width}x{image.height} image at {quality} quality")


async def _vision(env: DiagnosticsEnv, result: CheckResult, image: CheckImage) -> None:
    model = env.vision_model
    result.input_images = [image]
    result.request = {
        **endpoint(env, "POST /chat/completions"),
        "model": model,
        "question": QUESTION,
        "images": [image.as_json()],
    }
    reference = Reference(image.data, image.content_type, "diagnostics.png")
    described = await env.provider.analyze([reference], QUESTION, model)
    result.response = {
        "model": described.model,
        "text": described.text,
        "usage": usage_json(described.usage),
    }
    result.estimated_cost_usd = _cost(env, vision_cost(described.model, described.usage))
    result.detail = answered(env, described.model, described.text)


async def _edit(env: DiagnosticsEnv, result: CheckResult, reference: CheckImage) -> None:
    model = env.image_model
    spec = image_model(model)
    size, quality = cheapest(spec)
    result.input_images = [reference]
    call = ImageCall(
        prompt=EDIT_PROMPT,
        model=model,
        count=1,
        size=size,
        quality=quality,
        references=[Reference(reference.data, reference.content_type, "diagnostics.png")],
    )
    result.request = {
        **endpoint(env, "POST /images/edits"),
        "model": model,
        "prompt": EDIT_PROMPT,
        "n": 1,
        "size": size,
        "quality": quality,
        "image": [reference.as_json()],
    }
    answer = await env.provider.generate(call)
    image = _answered_image(result, answer)
    result.estimated_cost_usd = _cost(env, spec.estimate(answer.usage, 1, quality))
    result.detail = said(env, f"one {image.width}x{image.height} image from the reference")


def _answered_image(result: CheckResult, answer: CallResult) -> CheckImage:
    """The one image of an answer, recorded in the result with the answer."""
    images = [CheckImage.read(produced.data) for produced in answer.images]
    response: dict[str, Any] = {
        "images": [image.as_json() if image else {"unreadable": True} for image in images],
        "usage": usage_json(answer.usage),
    }
    revised = [produced.revised_prompt for produced in answer.images if produced.revised_prompt]
    if revised:
        response["revisedPrompt"] = revised[0]
    result.response = response
    readable = [image for image in images if image is not None]
    if not readable:
        raise ProviderError(Failure.BAD_RESPONSE, "the answer holds no readable image")
    result.output_images = readable
    return readable[0]


def _cost(env: DiagnosticsEnv, cost: float | None) -> float | None:
    return 0.0 if env.provider.placeholder else cost


async def _models(env: DiagnosticsEnv, result: CheckResult) -> None:
    """Whether the configured models are offered and live: one shut down or not offered
    fails, one shutting down within 30 days passes with a warning."""
    result.request = {**endpoint(env, "GET /models")}
    listed = {model.id: model for model in await env.provider.models()}
    names = list(dict.fromkeys((env.image_model, env.vision_model)))
    states: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    warnings: list[str] = []
    later: list[str] = []
    for name in names:
        remote = listed.get(name)
        catalogued = image_model(name)
        shutdown = remote.shutdown_date if remote is not None else None
        if shutdown is None and catalogued.known:
            shutdown = catalogued.shutdown_date
        states[name] = {
            "offered": remote is not None,
            "shutdownDate": shutdown.isoformat() if shutdown else None,
        }
        if remote is None:
            problems.append(f"{name} is not offered")
        elif shutdown is not None and shutdown <= env.today:
            problems.append(f"{name} was shut down on {shutdown.isoformat()}")
        elif shutdown is not None and shutdown - env.today <= RETIRING_SOON:
            warnings.append(f"{name} shuts down on {shutdown.isoformat()}")
        elif shutdown is not None:
            later.append(f"{name} shuts down on {shutdown.isoformat()}")
    result.response = {"offered": len(listed), "models": states}
    result.estimated_cost_usd = 0.0
    if warnings:
        result.warning = "; ".join(warnings)
    if problems:
        message = "; ".join(problems)
        result.fail(Failure.MISCONFIGURED.value, message, message)
        return
    live = " and ".join(names)
    summary = "; ".join([*warnings, *later]) or "no shutdown announced"
    offered = f"{len(listed)} model{'' if len(listed) == 1 else 's'} offered"
    result.detail = said(env, f"{offered}; {live} live ({summary})")
