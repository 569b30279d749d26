"""What one generation did, gathered as it runs, and how it is recorded and logged when it ends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storyframe.db.tables import Generation, Image, Message
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.image_provider import (
    Usage,
)
from storyframe.domain.places import Place
from storyframe.services.generation.types import GenerationStatus, ImageFailure
from storyframe.services.image_places import StoredImage

log = logging.getLogger("storyframe.generation")


@dataclass(frozen=True, slots=True)
class Job:
    """What a generation's work needs, read when it starts."""

    generation: Generation
    message: Message
    context_text: str | None
    caption: str
    attachments: list[Image]
    final_prompt: str | None = None
    """The prompt an earlier attempt assembled and sent, when it described references."""


@dataclass(slots=True)
class Outcome:
    """What one generation did, gathered as its calls finish."""

    started: float
    chat: Place | None = None
    stored: list[tuple[int, StoredImage]] = field(default_factory=list)
    errors: list[ImageFailure] = field(default_factory=list)
    usage: Usage | None = None
    cost: float | None = None
    vision_model: str | None = None
    vision_ms: float | None = None
    first_image_ms: float | None = None
    references: int = 0
    references_sent: int = 0
    final_prompt: str | None = None
    requested: int = 0
    earlier: set[int] = field(default_factory=set)
    """The positions an earlier attempt stored or failed."""
    late: list[asyncio.Future[None]] = field(default_factory=list)
    """The recording of images whose storing outlived the run's cancellation."""

    def add_usage(self, usage: Usage | None, cost: float | None) -> None:
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage + usage
        if cost is not None:
            self.cost = cost if self.cost is None else self.cost + cost

    def fail(self, indexes: Sequence[int | None], code: ErrorCode, message: str) -> None:
        self.errors.extend(ImageFailure(i, code, message) for i in indexes)

    def unaccounted(self) -> list[int]:
        """The positions of the images neither stored nor failed (yet)."""
        done = self.earlier | {index for index, _ in self.stored}
        done |= {e.index for e in self.errors if e.index is not None}
        return [i for i in range(self.requested) if i not in done]

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    def log_fields(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "chat": self.chat.kind.key if self.chat else None,
            "error_codes": sorted({e.code.value for e in self.errors}),
            "references": self.references,
            "references_sent": self.references_sent,
            "duration_ms": round(self.elapsed_ms(), 1),
            "first_image_ms": _round(self.first_image_ms),
            "vision_ms": _round(self.vision_ms),
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
        }


UNFINISHED = (GenerationStatus.QUEUED.value, GenerationStatus.RUNNING.value)


def status_of(generation: Generation) -> GenerationStatus:
    """The final status of a generation whose work has ended."""
    completed = generation.completed_count
    if generation.cancel_requested and completed < generation.requested_count:
        return GenerationStatus.PARTIAL if completed else GenerationStatus.CANCELLED
    if completed >= generation.requested_count:
        return GenerationStatus.SUCCEEDED
    return GenerationStatus.PARTIAL if completed else GenerationStatus.FAILED


def add_to_record(
    generation: Generation,
    usage: Usage | None,
    cost: float | None,
    failures: Sequence[ImageFailure] = (),
    completed: int = 0,
) -> None:
    """Add what one step spent and did to the generation's record."""
    if usage is not None:
        generation.input_text_tokens = (generation.input_text_tokens or 0) + usage.input_text_tokens
        generation.input_image_tokens = (
            generation.input_image_tokens or 0
        ) + usage.input_image_tokens
        generation.output_tokens = (generation.output_tokens or 0) + usage.output_tokens
    if cost is not None:
        generation.estimated_cost_usd = round((generation.estimated_cost_usd or 0) + cost, 6)
    if failures:
        # A new list: the column is JSON, whose changes in place go unseen.
        generation.errors = [*generation.errors, *(f.as_json() for f in failures)]
    generation.completed_count += completed


def close_record(
    generation: Generation, status: GenerationStatus, finished_at: datetime, outcome: Outcome
) -> None:
    generation.status = status.value
    generation.finished_at = finished_at
    generation.heartbeat_at = None
    if outcome.vision_model is not None:
        generation.vision_model = outcome.vision_model
    failures = [ImageFailure.of_json(stored) for stored in generation.errors]
    generation.errors = [f.as_json() for f in sorted(failures, key=lambda f: f.order)]


def log_finished(generation: Generation, outcome: Outcome) -> None:
    """The one line every generation writes when it ends."""
    log.info(
        "generation finished",
        extra={
            "generation_id": generation.id,
            "message_id": generation.message_id,
            "status": generation.status,
            "provider": generation.provider,
            "model": generation.model,
            "size": generation.size,
            "quality": generation.quality,
            "requested": generation.requested_count,
            "completed": generation.completed_count,
            "failed": generation.requested_count - generation.completed_count,
            "estimated_cost_usd": generation.estimated_cost_usd,
            **outcome.log_fields(),
        },
    )


def nothing_made(generation: Generation) -> DomainError | None:
    """What to tell of a generation that ended without an image: the error of the first image
    (by position) that failed, whichever call failed first; None while it runs or when it made
    some."""
    if generation.status in UNFINISHED or generation.completed_count:
        return None
    failures = [ImageFailure.of_json(stored) for stored in generation.errors]
    per_image = [f for f in failures if f.index is not None] or failures
    if not per_image:
        return DomainError(ErrorCode.PROVIDER_ERROR, "no image was made")
    first = min(per_image, key=lambda f: f.index or 0)
    field = ["prompt"] if first.code is ErrorCode.CONTENT_REFUSED else None
    return DomainError(first.code, first.message, field)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
