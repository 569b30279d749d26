"""Image generation in the API: the generate mutations, `analyzeImages`, `imageModels` and
`openAIStatus`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Protocol

import strawberry

from storyframe.domain.image_provider import Usage
from storyframe.domain.model_catalogue import PLACEHOLDER_MODEL
from storyframe.domain.places import Place
from storyframe.guards import extend_time_limit
from storyframe.resolvers.mutation import attempt
from storyframe.resolvers.places import chat_of
from storyframe.schema.errors import UserError
from storyframe.schema.ids import decode_pk
from storyframe.schema.payloads import Payload
from storyframe.schema.types import Generation, Info_, Message, TokenUsage
from storyframe.services.generation import Analysis, GenerationRequest, ModelState

SOON = timedelta(days=30)

IMAGE_COUNT = "How many images to make: 1 to 4."
CONTEXT_IMAGE_IDS = (
    "Images to use as references: described by the vision model in the prompt, and passed to "
    "the image model where it accepts input images."
)
MODEL = "An image model from `imageModels`; the default when omitted."
SIZE = "One of the model's `sizes`; the server's default when omitted."
QUALITY = "One of the model's `qualities`; the server's default when omitted."


@strawberry.input
class GenerateFrameImagesInput:
    frame_id: strawberry.ID
    prompt: str
    image_count: int = strawberry.field(default=1, description=IMAGE_COUNT)
    context_image_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description=CONTEXT_IMAGE_IDS
    )
    with_context: bool = strawberry.field(
        default=False, description="Add the video's context text to the prompt."
    )
    model: str | None = strawberry.field(default=None, description=MODEL)
    size: str | None = strawberry.field(default=None, description=SIZE)
    quality: str | None = strawberry.field(default=None, description=QUALITY)


@strawberry.input(description="The context chat's prompts always carry the context's text.")
class GenerateContextImagesInput:
    context_id: strawberry.ID
    prompt: str
    image_count: int = strawberry.field(default=1, description=IMAGE_COUNT)
    context_image_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description=CONTEXT_IMAGE_IDS
    )
    model: str | None = strawberry.field(default=None, description=MODEL)
    size: str | None = strawberry.field(default=None, description=SIZE)
    quality: str | None = strawberry.field(default=None, description=QUALITY)


@strawberry.input(description="A main chat's prompts always carry the video's context text.")
class GenerateMainChatImagesInput:
    main_chat_id: strawberry.ID
    prompt: str
    image_count: int = strawberry.field(default=1, description=IMAGE_COUNT)
    context_image_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description=CONTEXT_IMAGE_IDS
    )
    model: str | None = strawberry.field(default=None, description=MODEL)
    size: str | None = strawberry.field(default=None, description=SIZE)
    quality: str | None = strawberry.field(default=None, description=QUALITY)


@strawberry.type(
    description="The new message with its images, and the record of the generation. When no "
    "image could be made, `userErrors` says why, and the message and generation are still "
    "returned: the prompt stays in the chat."
)
class GenerateImagesPayload(Payload):
    message: Message | None = None
    generation: Generation | None = None


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


def _usage(usage: Usage | None) -> TokenUsage | None:
    if usage is None:
        return None
    return TokenUsage(
        input_text_tokens=usage.input_text_tokens,
        input_image_tokens=usage.input_image_tokens,
        output_tokens=usage.output_tokens,
    )


def _model_status(state: ModelState, today: date) -> ModelStatus:
    warning = None
    if state.listed is False:
        warning = "the provider does not offer this model"
    elif state.shutdown_date is not None and state.shutdown_date <= today:
        warning = f"retired on {state.shutdown_date.isoformat()}"
    elif state.shutdown_date is not None and state.shutdown_date - today <= SOON:
        warning = f"retires on {state.shutdown_date.isoformat()}; choose another model"
    return ModelStatus(
        name=state.name,
        available=state.listed,
        shutdown_date=state.shutdown_date,
        warning=warning,
    )


RECORD_SECONDS = 15
"""How long a generation's request waits past the generation's budget, for the record."""


def _extend(info: Info_, seconds: float) -> None:
    """Calls to the provider keep their own timeouts; the request may last as they allow."""
    if info.context.request is not None:
        extend_time_limit(info.context.request.scope, seconds)


def _reference_ids(ids: Sequence[strawberry.ID]) -> list[int]:
    return [decode_pk(global_id, "Image", "contextImageIds") for global_id in ids]


async def _generate(info: Info_, request: GenerationRequest) -> GenerateImagesPayload:
    service = info.context.services.generation
    # The generation stops at its budget; the request waits a little longer for its record.
    _extend(info, service.generator.budget_seconds + RECORD_SECONDS)
    generated = await service.generate(request)
    info.context.loaders.clear_all()
    return GenerateImagesPayload(
        message=Message.from_row(generated.message),
        generation=Generation.from_row(generated.generation),
        user_errors=[UserError.of(generated.error)] if generated.error else [],
    )


class _Generate(Protocol):
    """What the three generate inputs share."""

    prompt: str
    image_count: int
    context_image_ids: list[strawberry.ID]
    model: str | None
    size: str | None
    quality: str | None


async def _generate_in(info: Info_, chat: Place, input: _Generate) -> GenerateImagesPayload:
    request = GenerationRequest(
        chat=chat,
        prompt=input.prompt,
        image_count=input.image_count,
        reference_ids=_reference_ids(input.context_image_ids),
        with_context=getattr(input, "with_context", False),
        model=input.model,
        size=input.size,
        quality=input.quality,
    )
    return await _generate(info, request)


@strawberry.type
class GenerationMutation:
    @strawberry.mutation(
        description="Prompt in a frame: saves the message, then makes 1 to 4 images in it."
    )
    async def generate_frame_images(
        self, info: Info_, input: GenerateFrameImagesInput
    ) -> GenerateImagesPayload:
        async def act() -> GenerateImagesPayload:
            return await _generate_in(info, chat_of(input.frame_id, "Frame", "frameId"), input)

        return await attempt(GenerateImagesPayload, act)

    @strawberry.mutation(description="Prompt in a video's context chat: 1 to 4 images in it.")
    async def generate_context_images(
        self, info: Info_, input: GenerateContextImagesInput
    ) -> GenerateImagesPayload:
        async def act() -> GenerateImagesPayload:
            chat = chat_of(input.context_id, "Context", "contextId")
            return await _generate_in(info, chat, input)

        return await attempt(GenerateImagesPayload, act)

    @strawberry.mutation(description="Prompt in a main chat: 1 to 4 images in it.")
    async def generate_main_chat_images(
        self, info: Info_, input: GenerateMainChatImagesInput
    ) -> GenerateImagesPayload:
        async def act() -> GenerateImagesPayload:
            chat = chat_of(input.main_chat_id, "MainChat", "mainChatId")
            return await _generate_in(info, chat, input)

        return await attempt(GenerateImagesPayload, act)

    @strawberry.mutation(description="Ask the vision model about some of your images.")
    async def analyze_images(self, info: Info_, input: AnalyzeImagesInput) -> AnalyzeImagesPayload:
        async def act() -> AnalyzeImagesPayload:
            ids = [decode_pk(global_id, "Image", "imageIds") for global_id in input.image_ids]
            service = info.context.services.generation
            _extend(info, service.generator.vision_budget_seconds)
            analysis: Analysis = await service.analyze(ids, input.question)
            return AnalyzeImagesPayload(
                analysis=ImageAnalysis(
                    text=analysis.text,
                    model=analysis.model,
                    placeholder=analysis.placeholder,
                    usage=_usage(analysis.usage),
                    estimated_cost_usd=analysis.estimated_cost_usd,
                )
            )

        return await attempt(AnalyzeImagesPayload, act)


@strawberry.type
class GenerationQuery:
    @strawberry.field(
        description="The image models the server can use, the default first. Without an "
        "OpenAI key, only the placeholder model."
    )
    def image_models(self, info: Info_) -> list[ImageModel]:
        generator = info.context.services.generation.generator
        default = generator.defaults.image_model
        specs = generator.models(generator.today())
        return [
            ImageModel(
                name=spec.name,
                is_default=index == 0,
                placeholder=spec.name == PLACEHOLDER_MODEL,
                max_images_per_call=spec.max_images_per_call,
                sizes=list(spec.sizes),
                qualities=list(spec.qualities),
                max_reference_images=spec.max_reference_images,
                price_per_image_usd=spec.price_per_image(),
                shutdown_date=spec.shutdown_date,
            )
            for index, spec in enumerate(specs)
            if index == 0 or spec.name != default
        ]

    @strawberry.field(
        name="openAIStatus",
        description="Whether an OpenAI key is configured, the models in use, and whether one "
        "is retiring (from the provider's models list).",
    )
    async def openai_status(self, info: Info_) -> OpenAIStatus:
        service = info.context.services.generation
        _extend(info, service.generator.vision_budget_seconds)
        status = await service.status()
        today = service.generator.today()
        return OpenAIStatus(
            configured=status.configured,
            provider=status.provider,
            image_model=_model_status(status.image_model, today),
            vision_model=_model_status(status.vision_model, today),
            error=UserError.of(status.error) if status.error else None,
        )
