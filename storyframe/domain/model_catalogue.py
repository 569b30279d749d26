"""What Storyframe knows about image and vision models: limits, sizes and prices.

Prices are OpenAI's list prices in US dollars per million tokens; a model missing here is used
with cautious limits (one image per call, no reference images) and no cost estimate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date

from storyframe.domain.image_provider import Usage

PLACEHOLDER_MODEL = "placeholder"
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")

STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")
GPT_IMAGE_QUALITIES = ("low", "medium", "high")
# Output tokens of one image by quality at 1024x1024, for the price of an image.
_OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "auto": 1056}


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """US dollars per million tokens."""

    text_input: float
    image_input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_text_tokens * self.text_input
            + usage.input_image_tokens * self.image_input
            + usage.output_tokens * self.output
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class ImageModelSpec:
    name: str
    max_images_per_call: int
    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    max_reference_images: int
    """How many input images the edit endpoint takes; 0 when the model has none."""
    prices: TokenPrices | None
    shutdown_date: date | None = None
    known: bool = True

    def price_per_image(self, quality: str = "medium") -> float | None:
        """An estimate for one square image at `quality`, from its output tokens."""
        if self.prices is None:
            return None
        tokens = _OUTPUT_TOKENS_1024.get(quality, _OUTPUT_TOKENS_1024["medium"])
        return tokens * self.prices.output / 1_000_000

    def estimate(self, usage: Usage | None, images: int, quality: str) -> float | None:
        """The cost of a call: from its usage when reported, else from the image count."""
        if self.prices is None:
            return None
        if usage is not None:
            return self.prices.cost(usage)
        each = self.price_per_image(quality)
        return None if each is None else each * images


_GPT_IMAGE_2 = TokenPrices(text_input=5.0, image_input=8.0, output=30.0)
_GPT_IMAGE_15 = TokenPrices(text_input=5.0, image_input=8.0, output=32.0)
_GPT_IMAGE_1_MINI = TokenPrices(text_input=2.0, image_input=2.5, output=8.0)
_RETIRING = date(2026, 12, 1)


def _gpt_image(
    name: str, prices: TokenPrices, shutdown: date | None = None, sizes: tuple[str, ...] = ()
) -> ImageModelSpec:
    return ImageModelSpec(
        name=name,
        max_images_per_call=10,
        sizes=(*STANDARD_SIZES, *sizes, "auto"),
        qualities=(*GPT_IMAGE_QUALITIES, "auto"),
        max_reference_images=16,
        prices=prices,
        shutdown_date=shutdown,
    )


_WIDE = ("1536x864", "864x1536", "2048x1152", "2560x1440")

IMAGE_MODELS: dict[str, ImageModelSpec] = {
    spec.name: spec
    for spec in (
        _gpt_image("gpt-image-2.6-flare", _GPT_IMAGE_2, sizes=_WIDE),
        _gpt_image("gpt-image-2.6-sunburst", _GPT_IMAGE_2, sizes=_WIDE),
        _gpt_image("gpt-image-2.5-flare", _GPT_IMAGE_2, sizes=_WIDE),
        _gpt_image("gpt-image-2.5-sunburst", _GPT_IMAGE_2, sizes=_WIDE),
        _gpt_image("gpt-image-2", _GPT_IMAGE_2, sizes=_WIDE),
        _gpt_image("gpt-image-1.5", _GPT_IMAGE_15, _RETIRING),
        _gpt_image("gpt-image-1-mini", _GPT_IMAGE_1_MINI, _RETIRING),
    )
}

PLACEHOLDER_SPEC = ImageModelSpec(
    name=PLACEHOLDER_MODEL,
    max_images_per_call=1,
    sizes=STANDARD_SIZES,
    qualities=("auto",),
    max_reference_images=16,
    prices=None,
)

VISION_PRICES: dict[str, TokenPrices] = {
    "gpt-5.4-mini": TokenPrices(text_input=0.75, image_input=0.75, output=4.5),
    "gpt-5.4": TokenPrices(text_input=2.5, image_input=2.5, output=15.0),
    "gpt-5.5": TokenPrices(text_input=5.0, image_input=5.0, output=30.0),
}


def base_name(name: str) -> str:
    """A model's name without its snapshot date: `gpt-5.4-mini-2026-03-17` → `gpt-5.4-mini`."""
    return _SNAPSHOT.sub("", name)


def image_model(name: str) -> ImageModelSpec:
    """The spec of a model (or of a snapshot of it); an unknown name gets cautious limits and
    no price."""
    if name == PLACEHOLDER_MODEL:
        return PLACEHOLDER_SPEC
    spec = IMAGE_MODELS.get(name) or IMAGE_MODELS.get(base_name(name))
    if spec is not None:
        return spec if spec.name == name else replace(spec, name=name)
    return ImageModelSpec(
        name=name,
        max_images_per_call=1,
        sizes=STANDARD_SIZES,
        qualities=(*GPT_IMAGE_QUALITIES, "auto"),
        max_reference_images=0,
        prices=None,
        known=False,
    )


def usable_image_models(default: str, today: date) -> list[ImageModelSpec]:
    """The configured model first, then every known model not yet shut down."""
    specs = [image_model(default)]
    specs += [
        spec
        for spec in IMAGE_MODELS.values()
        if spec.name != default and (spec.shutdown_date is None or spec.shutdown_date > today)
    ]
    return specs


def vision_cost(model: str, usage: Usage | None) -> float | None:
    prices = VISION_PRICES.get(model) or VISION_PRICES.get(base_name(model))
    if prices is None or usage is None:
        return None
    return prices.cost(usage)
