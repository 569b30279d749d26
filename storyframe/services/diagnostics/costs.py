"""What the checks cost, roughly, before they run: from the model catalogue's list prices and
the tokens such calls usually take. Nothing costs anything with the placeholder provider."""

from __future__ import annotations

from typing import Final

from storyframe.domain.image_provider import Usage
from storyframe.domain.model_catalogue import ImageModelSpec, image_model, vision_cost
from storyframe.services.diagnostics.results import Suite
from storyframe.services.diagnostics.suites import (
    ANALYSIS,
    EDIT,
    FULL_FLOW,
    GENERATION,
    IMAGE,
    REFERENCE_GENERATION,
    SUITES,
    TEXT,
    VISION,
    CheckSpec,
)

TEXT_USAGE: Final = Usage(input_text_tokens=40, output_tokens=30)
"""A one-line question and its one-line answer."""
VISION_USAGE: Final = Usage(input_text_tokens=60, input_image_tokens=800, output_tokens=120)
"""One image looked at, and a short answer (or a paragraph describing it)."""
PROMPT_TOKENS: Final = 20
REFERENCE_TOKENS: Final = 800
"""Input image tokens of one reference image sent to an edit."""
PARTIAL_TOKENS: Final = 100
"""Output tokens of one preview streamed while an image renders."""


def cheapest(spec: ImageModelSpec) -> tuple[str, str]:
    """The smallest size and the lowest quality the model takes: what the checks ask for."""
    sizes = [size for size in spec.sizes if _pixels(size) is not None] or list(spec.sizes)
    size = min(sizes, key=lambda s: _pixels(s) or 0)
    qualities = [quality for quality in ("low", "medium", "high") if quality in spec.qualities]
    return size, (qualities[0] if qualities else spec.qualities[0])


def _pixels(size: str) -> int | None:
    width, separator, height = size.partition("x")
    if not (separator and width.isdecimal() and height.isdecimal()):
        return None
    return int(width) * int(height)


def estimated_cost(
    suite: Suite,
    provider_is_placeholder: bool,
    image_model_name: str,
    vision_model_name: str,
    *,
    partial_images: int = 0,
) -> float:
    """Roughly what running every check of the suite costs, in US dollars: 0 with the
    placeholder provider, and nothing counted for a model the catalogue has no price for.
    `partial_images` are the previews each of the API's image calls streams."""
    if provider_is_placeholder:
        return 0.0
    return sum(
        check_cost(spec, image_model_name, vision_model_name, partial_images=partial_images)
        for spec in SUITES[suite]
    )


def check_cost(
    spec: CheckSpec, image_model_name: str, vision_model_name: str, *, partial_images: int = 0
) -> float:
    """Roughly what one check costs with a real provider, in US dollars."""
    vision = vision_cost(vision_model_name, VISION_USAGE) or 0.0
    if spec == TEXT:
        return vision_cost(vision_model_name, TEXT_USAGE) or 0.0
    if spec == IMAGE:
        return _image_cost(image_model_name, references=0, partials=0)
    if spec == EDIT:
        return _image_cost(image_model_name, references=1, partials=0)
    if spec in (VISION, ANALYSIS):
        return vision
    if spec in (GENERATION, FULL_FLOW):
        return _image_cost(image_model_name, references=0, partials=partial_images)
    if spec == REFERENCE_GENERATION:
        return vision + _image_cost(image_model_name, references=1, partials=partial_images)
    return 0.0


def _image_cost(name: str, *, references: int, partials: int) -> float:
    spec = image_model(name)
    if spec.prices is None:
        return 0.0
    _, quality = cheapest(spec)
    each = spec.price_per_image(quality) or 0.0
    extra = Usage(
        input_text_tokens=PROMPT_TOKENS,
        input_image_tokens=REFERENCE_TOKENS * references,
        output_tokens=PARTIAL_TOKENS * partials,
    )
    return each + spec.prices.cost(extra)
