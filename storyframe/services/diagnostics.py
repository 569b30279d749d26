"""`storyframe selftest`: is image generation set up right? Checks the configuration and the
provider's models and, when asked, makes one cheap image, describes it, and edits it."""

from __future__ import annotations

import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from PIL import Image, UnidentifiedImageError
from pydantic.alias_generators import to_camel

from storyframe.domain.image_provider import (
    ImageCall,
    ImageProvider,
    ProviderError,
    Reference,
)
from storyframe.domain.model_catalogue import image_model, vision_cost
from storyframe.services.generation import ImageDefaults

PROMPT = "A plain red circle in the middle of a white background, flat colours."
QUESTION = "Which shape and which colour do you see? Answer in at most six words."
EDIT_PROMPT = "The same red circle, now with a small blue square beside it."


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    duration_ms: float | None = None
    estimated_cost_usd: float | None = None


@dataclass(slots=True)
class Report:
    provider: str
    image_model: str
    vision_model: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_json(self) -> dict[str, Any]:
        """The report with camelCase names, as `storyframe selftest --json` prints it."""
        return {"ok": self.ok, **_camel(asdict(self))}


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {to_camel(name): _camel(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


async def self_test(
    provider: ImageProvider, defaults: ImageDefaults, today: date, *, generate: bool
) -> Report:
    """Run the checks in turn; a failed one does not stop the others that can still run."""
    image_name = provider.name if provider.placeholder else defaults.image_model
    vision_name = provider.name if provider.placeholder else defaults.vision_model
    report = Report(provider.name, image_name, vision_name)
    report.checks.append(_configuration(provider, defaults, today))
    if not provider.placeholder:
        report.checks.append(await _timed("models", lambda: _models(provider, defaults, today)))
    if not generate:
        return report
    made: list[bytes] = []
    spec = image_model(image_name)
    report.checks.append(
        await _timed("generation", lambda: _generation(provider, image_name, made))
    )
    if made:
        reference = Reference(made[0], "image/png", "selftest.png")
        report.checks.append(
            await _timed("vision", lambda: _vision(provider, reference, vision_name))
        )
        if spec.max_reference_images > 0:
            report.checks.append(
                await _timed("edit", lambda: _edit(provider, image_name, reference))
            )
    return report


def _configuration(provider: ImageProvider, defaults: ImageDefaults, today: date) -> Check:
    if provider.placeholder:
        return Check("configuration", True, "no OPENAI_API_KEY: placeholder images, made offline")
    spec = image_model(defaults.image_model)
    if spec.shutdown_date is not None and spec.shutdown_date <= today:
        detail = f"{spec.name} was shut down on {spec.shutdown_date.isoformat()}"
        return Check("configuration", False, detail)
    known = "" if spec.known else " (not in the catalog: one image a call, no references)"
    return Check("configuration", True, f"OpenAI, image model {spec.name}{known}")


async def _timed(name: str, run: Callable[[], Awaitable[Check]]) -> Check:
    started = time.monotonic()
    try:
        check = await run()
    except ProviderError as error:
        check = Check(name, False, f"{error.failure.value}: {error.message}")
    check.name = name
    check.duration_ms = round((time.monotonic() - started) * 1000, 1)
    return check


async def _models(provider: ImageProvider, defaults: ImageDefaults, today: date) -> Check:
    listed = {model.id: model for model in await provider.models()}
    problems = []
    for name in (defaults.image_model, defaults.vision_model):
        model = listed.get(name)
        if model is None:
            problems.append(f"{name} is not offered")
        elif model.shutdown_date is not None and model.shutdown_date <= today:
            problems.append(f"{name} was shut down on {model.shutdown_date.isoformat()}")
        elif model.shutdown_date is not None:
            problems.append(f"{name} shuts down on {model.shutdown_date.isoformat()}")
    retired = [p for p in problems if "shuts down" not in p]
    detail = "; ".join(problems) or f"{len(listed)} models offered, both configured ones live"
    return Check("models", not retired, detail)


async def _generation(provider: ImageProvider, model: str, made: list[bytes]) -> Check:
    spec = image_model(model)
    quality = "low" if "low" in spec.qualities else spec.qualities[0]
    call = ImageCall(prompt=PROMPT, model=model, count=1, size="1024x1024", quality=quality)
    result = await provider.generate(call)
    data = result.images[0].data
    size = _size_of(data)
    if size is None:
        return Check("generation", False, "the answer is not a readable image")
    made.append(data)
    cost = spec.estimate(result.usage, 1, quality)
    return Check("generation", True, f"one {size[0]}x{size[1]} image", estimated_cost_usd=cost)


async def _vision(provider: ImageProvider, reference: Reference, model: str) -> Check:
    described = await provider.analyze([reference], QUESTION, model)
    answer = " ".join(described.text.split())[:200]
    cost = vision_cost(described.model, described.usage)
    return Check("vision", bool(answer), f"{described.model}: {answer}", estimated_cost_usd=cost)


async def _edit(provider: ImageProvider, model: str, reference: Reference) -> Check:
    spec = image_model(model)
    quality = "low" if "low" in spec.qualities else spec.qualities[0]
    call = ImageCall(
        prompt=EDIT_PROMPT,
        model=model,
        count=1,
        size="1024x1024",
        quality=quality,
        references=[reference],
    )
    result = await provider.generate(call)
    size = _size_of(result.images[0].data)
    if size is None:
        return Check("edit", False, "the answer is not a readable image")
    cost = spec.estimate(result.usage, 1, quality)
    detail = f"one {size[0]}x{size[1]} image from a reference"
    return Check("edit", True, detail, estimated_cost_usd=cost)


def _size_of(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
