"""What one generation did, gathered as it runs, and how it is recorded and logged when it ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storyframe.db.tables import Generation, Image, Message
from storyframe.domain.errors import ErrorCode
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
    finishing: bool = False

    def add_usage(self, usage: Usage | None, cost: float | None) -> None:
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage + usage
        if cost is not None:
            self.cost = cost if self.cost is None else self.cost + cost

    def fail(self, indexes: Sequence[int | None], code: ErrorCode, message: str) -> None:
        self.errors.extend(ImageFailure(i, code, message) for i in indexes)

    def unaccounted(self) -> list[int]:
        """The positions of the images neither stored nor failed (yet)."""
        done = {index for index, _ in self.stored}
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


def status_of(generation: Generation, completed: int) -> GenerationStatus:
    if completed == generation.requested_count:
        return GenerationStatus.SUCCEEDED
    return GenerationStatus.PARTIAL if completed else GenerationStatus.FAILED


def record(
    generation: Generation,
    outcome: Outcome,
    completed: int,
    status: GenerationStatus,
    finished_at: datetime,
) -> None:
    generation.status = status.value
    generation.completed_count = completed
    generation.errors = [e.as_json() for e in sorted(outcome.errors, key=lambda e: e.order)]
    generation.vision_model = outcome.vision_model
    usage = outcome.usage
    if usage is not None:
        generation.input_text_tokens = usage.input_text_tokens
        generation.input_image_tokens = usage.input_image_tokens
        generation.output_tokens = usage.output_tokens
    generation.estimated_cost_usd = round(outcome.cost, 6) if outcome.cost is not None else None
    generation.finished_at = finished_at


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


def summary(outcome: Outcome) -> tuple[ErrorCode, str]:
    """The error to tell when nothing was made: that of the first image (by position) that
    failed, whichever call failed first."""
    per_image = [e for e in outcome.errors if e.index is not None] or outcome.errors
    if not per_image:
        return ErrorCode.PROVIDER_ERROR, "no image was made"
    first = min(per_image, key=lambda e: e.index or 0)
    return first.code, first.message


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
