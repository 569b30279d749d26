"""Image generation in the API: the record of a generation, and the inputs and payload of the
generate mutations."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import strawberry
from strawberry import Private

from storyframe.db import tables
from storyframe.domain import jobs
from storyframe.domain.image_provider import Usage
from storyframe.domain.model_catalogue import PLACEHOLDER_MODEL
from storyframe.schema.chats import Message
from storyframe.schema.errors import ErrorCode
from storyframe.schema.images import Image
from storyframe.schema.nodes import Columns, Node
from storyframe.schema.payloads import Payload
from storyframe.schema.request_context import Info_
from storyframe.services import generation


@strawberry.type(description="Tokens a generation used, as the provider reported them.")
class TokenUsage:
    input_text_tokens: int
    input_image_tokens: int
    output_tokens: int

    @strawberry.field
    def input_tokens(self) -> int:
        return self.input_text_tokens + self.input_image_tokens

    @strawberry.field
    def total_tokens(self) -> int:
        return self.input_text_tokens + self.input_image_tokens + self.output_tokens

    @classmethod
    def of(cls, usage: Usage | None) -> TokenUsage | None:
        if usage is None:
            return None
        return cls(
            input_text_tokens=usage.input_text_tokens,
            input_image_tokens=usage.input_image_tokens,
            output_tokens=usage.output_tokens,
        )


@strawberry.type(description="Why an image of a generation, or a step of it, failed.")
class GenerationError:
    index: int | None = strawberry.field(
        description="The position (from 0) of the image that failed; null for a step that "
        "concerns them all, such as describing the reference images."
    )
    code: ErrorCode  # type: ignore[valid-type]
    message: str

    @classmethod
    def of(cls, failure: generation.ImageFailure) -> GenerationError:
        return cls(index=failure.index, code=failure.code, message=failure.message)


GenerationStatus = strawberry.enum(
    generation.GenerationStatus,
    name="GenerationStatus",
    description="Where a generation stands. QUEUED and RUNNING are not final; the rest are.",
)


_GENERATION_COLUMNS = Columns(
    "id",
    "message_id",
    "status",
    "provider",
    "model",
    "vision_model",
    "size",
    "quality",
    "requested_count",
    "completed_count",
    "errors",
    "input_text_tokens",
    "input_image_tokens",
    "output_tokens",
    "estimated_cost_usd",
    "created_at",
    "started_at",
    "finished_at",
    "attempts",
    "cancel_requested",
)


@strawberry.type(
    description="The work done for a message: the model, how many images it made, what it "
    "cost and how it went. Kept apart from the message, whose prompt stays even when this fails."
)
class Generation(Node):
    message_pk: Private[int]
    status: GenerationStatus  # type: ignore[valid-type]
    provider: str = strawberry.field(description="`openai`, or `placeholder` without a key.")
    model: str = strawberry.field(description="The image model.")
    vision_model: str | None = strawberry.field(
        description="The model that described the reference images; null without references."
    )
    size: str
    quality: str
    requested_count: int
    completed_count: int
    errors: list[GenerationError]
    usage: TokenUsage | None = strawberry.field(
        description="Null when the provider reports none (placeholders, some compatible APIs)."
    )
    estimated_cost_usd: float | None = strawberry.field(
        description="An estimate in US dollars from the usage and list prices; null when the "
        "model's prices are unknown."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = strawberry.field(
        description="How many times a process started it: 2 when a crash lost the first "
        "run's images, which were then asked for (and paid for) again."
    )
    cancel_requested: bool = strawberry.field(
        description="`cancelGeneration` was asked; it ends CANCELLED (PARTIAL with images)."
    )

    @strawberry.field(
        description="Its place in the queue from 1 (the next to start) while QUEUED; null "
        "otherwise."
    )
    async def position(self, info: Info_) -> int | None:
        if self.status is not generation.GenerationStatus.QUEUED:
            return None
        return await info.context.loaders.queue_position.load(self.pk)

    @strawberry.field
    def failed_count(self) -> int:
        if self.status in (generation.GenerationStatus.QUEUED, generation.GenerationStatus.RUNNING):
            return 0
        return self.requested_count - self.completed_count

    @strawberry.field
    def placeholder(self) -> bool:
        return self.provider == PLACEHOLDER_MODEL

    @strawberry.field(description="From start to end, in milliseconds; null until both.")
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds() * 1000)

    @strawberry.field(graphql_type=Message)
    async def message(self, info: Info_) -> Any:
        return await info.context.loaders.message.load(self.message_pk)

    @classmethod
    def from_row(cls, row: tables.Generation) -> Generation:
        (
            pk,
            message_pk,
            status,
            provider,
            model,
            vision_model,
            size,
            quality,
            requested,
            completed,
            errors,
            input_text,
            input_image,
            output,
            cost,
            created_at,
            started_at,
            finished_at,
            attempts,
            cancel_requested,
        ) = _GENERATION_COLUMNS.of(row)
        assert pk is not None
        usage = None
        if output is not None:
            usage = TokenUsage(
                input_text_tokens=input_text or 0,
                input_image_tokens=input_image or 0,
                output_tokens=output,
            )
        return cls(
            pk=pk,
            message_pk=message_pk,
            status=generation.GenerationStatus(status),
            provider=provider,
            model=model,
            vision_model=vision_model,
            size=size,
            quality=quality,
            requested_count=requested,
            completed_count=completed,
            errors=[GenerationError.of(generation.ImageFailure.of_json(e)) for e in errors],
            usage=usage,
            estimated_cost_usd=cost,
            created_at=created_at,
            started_at=started_at,
            finished_at=finished_at,
            attempts=attempts,
            cancel_requested=cancel_requested,
        )


IMAGE_COUNT = "How many images to make: 1 to 4."
CONTEXT_IMAGE_IDS = (
    "Images to use as references: described by the vision model in the prompt, and passed to "
    "the image model where it accepts input images."
)
MODEL = "An image model from `imageModels`; the default when omitted."
SIZE = "One of the model's `sizes`; the server's default when omitted."
QUALITY = "One of the model's `qualities`; the server's default when omitted."
WAIT = (
    "Answer once the generation has ended (up to the server's `GENERATION_WAIT_SECONDS`), with "
    "its images; by default the answer comes at once, with the generation QUEUED, and "
    "`generationUpdated` tells how it goes. A waiting client that goes away does not stop it."
)
IDEMPOTENCY_KEY = (
    "A key of your choosing (for instance a UUID) that makes retrying safe: the same key with "
    "the same input answers with the first request's message and generation and makes no "
    "second generation, also while the first is running; with other input it is refused with "
    "IDEMPOTENCY_CONFLICT. Keys are yours alone and expire after a day."
)


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
    wait: bool = strawberry.field(default=False, description=WAIT)
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


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
    wait: bool = strawberry.field(default=False, description=WAIT)
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


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
    wait: bool = strawberry.field(default=False, description=WAIT)
    idempotency_key: str | None = strawberry.field(default=None, description=IDEMPOTENCY_KEY)


@strawberry.type(
    description="The new message with its images, and the record of the generation. When no "
    "image could be made, `userErrors` says why, and the message and generation are still "
    "returned: the prompt stays in the chat."
)
class GenerateImagesPayload(Payload):
    message: Message | None = None
    generation: Generation | None = None


@strawberry.input
class CancelGenerationInput:
    id: strawberry.ID


@strawberry.type(
    description="The generation, cancelled (or PARTIAL, keeping the images it had stored); "
    "a running one may take a moment to reach its final status, which `generationUpdated` "
    "tells."
)
class CancelGenerationPayload(Payload):
    generation: Generation | None = None


GenerationEventKind = strawberry.enum(
    jobs.EventKind,
    name="GenerationEventKind",
    description="What changed: STATE is the generation as it stands, sent first to a new "
    "subscriber; CANCEL_REQUESTED says a running one was asked to stop (it ends soon); "
    "FINISHED is the last event of a generation.",
)


@strawberry.type(description="A preview of an image still being made: small, and soon replaced.")
class GenerationPreview:
    index: int = strawberry.field(description="The image's position among those asked for.")
    sequence: int = strawberry.field(description="Which preview of that image, from 0.")
    url: str = strawberry.field(description="A `data:` URL of a JPEG at most 512 px a side.")
    width: int
    height: int

    @classmethod
    def of(cls, index: int, preview: jobs.Preview) -> GenerationPreview:
        encoded = base64.b64encode(preview.data).decode()
        return cls(
            index=index,
            sequence=preview.sequence,
            url=f"data:{preview.content_type};base64,{encoded}",
            width=preview.width,
            height=preview.height,
        )


@strawberry.type(description="One change of a generation, as `generationUpdated` tells it.")
class GenerationEvent:
    kind: GenerationEventKind  # type: ignore[valid-type]
    generation: Generation = strawberry.field(description="The generation after the change.")
    index: int | None = strawberry.field(
        description="The image concerned (PREVIEW, IMAGE_STORED, IMAGE_FAILED), by position."
    )
    image_pk: Private[int | None]
    preview: GenerationPreview | None = strawberry.field(description="With PREVIEW.")

    @strawberry.field(
        graphql_type=Image | None,
        description="With IMAGE_STORED: the stored image, whose URL answers already.",
    )
    async def image(self, info: Info_) -> Any:
        if self.image_pk is None:
            return None
        return await info.context.loaders.image.load(self.image_pk)
