"""Image generation in the API: the generate mutations, `analyzeImages`, `imageModels` and
`openAIStatus`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import strawberry

from storyframe.domain.places import Place
from storyframe.guards import extend_time_limit
from storyframe.resolvers.mutation import mutation
from storyframe.resolvers.places import chat_of
from storyframe.schema.chats import Message
from storyframe.schema.errors import UserError
from storyframe.schema.generation import (
    GenerateContextImagesInput,
    GenerateFrameImagesInput,
    GenerateImagesPayload,
    GenerateMainChatImagesInput,
    Generation,
)
from storyframe.schema.ids import decode_pk
from storyframe.schema.providers import (
    AnalyzeImagesInput,
    AnalyzeImagesPayload,
    ImageAnalysis,
    ImageModel,
    OpenAIStatus,
)
from storyframe.schema.request_context import Info_
from storyframe.services.generation import GenerationRequest

RECORD_SECONDS = 15
"""How long a generation's request waits past the generation's budget, for the record."""


def _extend(info: Info_, seconds: float) -> None:
    """Calls to the provider keep their own timeouts; the request may last as they allow."""
    if info.context.request is not None:
        extend_time_limit(info.context.request.scope, seconds)


def _reference_ids(ids: Sequence[strawberry.ID]) -> list[int]:
    return [decode_pk(global_id, "Image", "contextImageIds") for global_id in ids]


class _Generate(Protocol):
    """What the three generate inputs share."""

    prompt: str
    image_count: int
    context_image_ids: list[strawberry.ID]
    model: str | None
    size: str | None
    quality: str | None


async def _generate(info: Info_, chat: Place, input: _Generate) -> GenerateImagesPayload:
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
    service = info.context.services.generation
    # The generation stops at its budget; the request waits a little longer for its record.
    _extend(info, service.generator.budget_seconds + RECORD_SECONDS)
    generated = await service.generate(request)
    # What the loaders hold predates the new message and images.
    info.context.loaders.clear_all()
    return GenerateImagesPayload(
        message=Message.from_row(generated.message),
        generation=Generation.from_row(generated.generation),
        user_errors=[UserError.of(generated.error)] if generated.error else [],
    )


@strawberry.type
class GenerationMutation:
    """The generate mutations clear the loaders once the generation is written."""

    @mutation(
        "Prompt in a frame: saves the message, then makes 1 to 4 images in it.",
        fresh_loaders=False,
    )
    async def generate_frame_images(
        self, info: Info_, input: GenerateFrameImagesInput
    ) -> GenerateImagesPayload:
        return await _generate(info, chat_of(input.frame_id, "Frame", "frameId"), input)

    @mutation("Prompt in a video's context chat: 1 to 4 images in it.", fresh_loaders=False)
    async def generate_context_images(
        self, info: Info_, input: GenerateContextImagesInput
    ) -> GenerateImagesPayload:
        return await _generate(info, chat_of(input.context_id, "Context", "contextId"), input)

    @mutation("Prompt in a main chat: 1 to 4 images in it.", fresh_loaders=False)
    async def generate_main_chat_images(
        self, info: Info_, input: GenerateMainChatImagesInput
    ) -> GenerateImagesPayload:
        return await _generate(info, chat_of(input.main_chat_id, "MainChat", "mainChatId"), input)

    @mutation("Ask the vision model about some of your images.", fresh_loaders=False)
    async def analyze_images(self, info: Info_, input: AnalyzeImagesInput) -> AnalyzeImagesPayload:
        ids = [decode_pk(global_id, "Image", "imageIds") for global_id in input.image_ids]
        service = info.context.services.generation
        _extend(info, service.generator.vision_budget_seconds)
        analysis = await service.analyze(ids, input.question)
        return AnalyzeImagesPayload(analysis=ImageAnalysis.of(analysis))


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
            ImageModel.of(spec, is_default=index == 0)
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
        return OpenAIStatus.of(status, service.generator.today())
