"""The provider's side of the API: the image models, the provider's status, and the vision
model's answers about images."""

from __future__ import annotations

from datetime import date

import strawberry

from storyframe.domain.model_catalogue import PLACEHOLDER_MODEL, ImageModelSpec
from storyframe.schema.errors import UserError
from storyframe.schema.generation import TokenUsage
from storyframe.schema.payloads import Payload
from storyframe.services import generation


@strawberry.input
class AnalyzeImagesInput:
    image_ids: list[strawberry.ID] = strawberry.field(description="1 to 16 of your images.")
    question: str = strawberry.field(description="What to ask about them.")


@strawberry.type(description="A vision model's answer about images.")
class ImageAnalysis:
    text: str
    model: str
    placeholder: bool = strawberry.field(
        description="Made offline without a vision model: sizes and colours only."
    )
    usage: TokenUsage | None
    estimated_cost_usd: float | None

    @classmethod
    def of(cls, analysis: generation.Analysis) -> ImageAnalysis:
        return cls(
            text=analysis.text,
            model=analysis.model,
            placeholder=analysis.placeholder,
            usage=TokenUsage.of(analysis.usage),
            estimated_cost_usd=analysis.estimated_cost_usd,
        )


@strawberry.type
class AnalyzeImagesPayload(Payload):
    analysis: ImageAnalysis | None = None


@strawberry.type(description="An image model the server can use, and what it supports.")
class ImageModel:
    name: str
    is_default: bool
    placeholder: bool
    max_images_per_call: int = strawberry.field(
        description="Images one call makes; more are made by concurrent calls."
    )
    sizes: list[str]
    qualities: list[str]
    max_reference_images: int = strawberry.field(
        description="Reference images passed to the model itself; 0 when only their "
        "description reaches it."
    )
    price_per_image_usd: float | None = strawberry.field(
        description="An estimate for one 1024x1024 image at medium quality; null if unknown."
    )
    shutdown_date: date | None = strawberry.field(description="When the model is retired.")

    @classmethod
    def of(cls, spec: ImageModelSpec, *, is_default: bool) -> ImageModel:
        return cls(
            name=spec.name,
            is_default=is_default,
            placeholder=spec.name == PLACEHOLDER_MODEL,
            max_images_per_call=spec.max_images_per_call,
            sizes=list(spec.sizes),
            qualities=list(spec.qualities),
            max_reference_images=spec.max_reference_images,
            price_per_image_usd=spec.price_per_image(),
            shutdown_date=spec.shutdown_date,
        )


@strawberry.type(description="A model in use, as the provider reports it.")
class ModelStatus:
    name: str
    available: bool | None = strawberry.field(
        description="Whether the provider lists the model; null when it could not be asked."
    )
    shutdown_date: date | None
    warning: str | None = strawberry.field(
        description="Set when the model is missing, retired or retires within 30 days."
    )

    @classmethod
    def of(cls, state: generation.ModelState, today: date) -> ModelStatus:
        return cls(
            name=state.name,
            available=state.listed,
            shutdown_date=state.shutdown_date,
            warning=state.warning(today),
        )


@strawberry.type(description="Whether image generation is configured, and its models' state.")
class OpenAIStatus:
    configured: bool = strawberry.field(
        description="Whether an OpenAI key is set; without one, images are placeholders."
    )
    provider: str
    image_model: ModelStatus
    vision_model: ModelStatus
    error: UserError | None = strawberry.field(
        description="Why the provider could not be asked about its models."
    )

    @classmethod
    def of(cls, status: generation.ProviderStatus, today: date) -> OpenAIStatus:
        error = UserError.of(status.error) if status.error else None
        return cls(
            configured=status.configured,
            provider=status.provider,
            image_model=ModelStatus.of(status.image_model, today),
            vision_model=ModelStatus.of(status.vision_model, today),
            error=error,
        )
