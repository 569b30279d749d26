"""Image generation in the API: the generate mutations, `analyzeImages`, `imageModels` and
`openAIStatus`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Protocol

import strawberry
from strawberry.dataloader import DataLoader

from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.pages import PageRequest
from storyframe.domain.places import Place
from storyframe.domain.ports import GenerationScope
from storyframe.guards import extend_time_limit
from storyframe.resolvers.mutation import mutation
from storyframe.resolvers.places import chat_of
from storyframe.schema.chats import Message
from storyframe.schema.connection import Connection
from storyframe.schema.errors import UserError
from storyframe.schema.generation import (
    CancelGenerationInput,
    CancelGenerationPayload,
    GenerateContextImagesInput,
    GenerateFrameImagesInput,
    GenerateImagesPayload,
    GenerateMainChatImagesInput,
    Generation,
)
from storyframe.schema.ids import decode_cursor, decode_pk
from storyframe.schema.nodes import AFTER, FIRST
from storyframe.schema.providers import (
    AnalyzeImagesInput,
    AnalyzeImagesPayload,
    ImageAnalysis,
    ImageModel,
    OpenAIStatus,
)
from storyframe.schema.request_context import Info_
from storyframe.services.generation import GenerationRequest
from storyframe.services.generation import GenerationStatus as StatusValue
from storyframe.services.generation.outcome import nothing_made

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
    wait: bool
    idempotency_key: str | None


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
    wait = service.generator.wait_seconds if input.wait else None
    if wait is not None:
        # The request may last as long as it waits, and a little longer for the answer.
        _extend(info, wait + RECORD_SECONDS)
    submitted = await service.submit(request, input.idempotency_key, wait)
    # What the loaders hold predates the new message and images.
    info.context.loaders.clear_all()
    row = submitted.generation
    error = nothing_made(row) if input.wait else None
    return GenerateImagesPayload(
        message=Message.from_row(submitted.message),
        generation=Generation.from_row(row),
        user_errors=[UserError.of(error)] if error else [],
    )


@strawberry.type
class GenerationMutation:
    """The generate mutations clear the loaders once the generation is written."""

    @mutation(
        "Prompt in a frame: saves the message and queues the making of 1 to 4 images in it.",
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

    @mutation(
        "Stop a queued or running generation; the images it stored stay.", fresh_loaders=False
    )
    async def cancel_generation(
        self, info: Info_, input: CancelGenerationInput
    ) -> CancelGenerationPayload:
        pk = decode_pk(input.id, "Generation", "id")
        row = await info.context.services.generation.cancel(pk)
        return CancelGenerationPayload(generation=Generation.from_row(row))

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
        description="Generations of a video, or of every video of a project (give one of "
        "`videoId` and `projectId`), newest first: the queue (`status: [QUEUED, RUNNING]`, "
        "each QUEUED one with its `position`) and the history."
    )
    async def generations(
        self,
        info: Info_,
        video_id: strawberry.ID | None = None,
        project_id: strawberry.ID | None = None,
        status: list[StatusValue] | None = None,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Connection[Generation]:
        if (video_id is None) == (project_id is None):
            raise DomainError(ErrorCode.INVALID, "give one of videoId and projectId", ["videoId"])
        if video_id is not None:
            scope = GenerationScope(decode_pk(video_id, "Video", "videoId"))
        else:
            assert project_id is not None
            scope = GenerationScope(decode_pk(project_id, "Project", "projectId"), by_project=True)
        page = PageRequest.of(first, decode_cursor(after))
        statuses = [s.value for s in status] if status else [s.value for s in StatusValue]
        reads = info.context.services.reads
        rows = await reads.generations(scope, statuses, page)

        async def count(keys: list[int]) -> list[int]:
            return [await reads.count_generations(scope, statuses) for _ in keys]

        return Connection.of(
            [Generation.from_row(row) for row in rows], page, (DataLoader(load_fn=count), 0)
        )

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
