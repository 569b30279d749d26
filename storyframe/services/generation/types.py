"""What a generation is asked and answers: the request, the result, the analysis and the
provider's status, and the limits and codes they use."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from storyframe.db.tables import Generation, Image, Message
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.image_provider import (
    Failure,
    ProviderError,
    Usage,
)
from storyframe.domain.places import Place

log = logging.getLogger("storyframe.generation")


MAX_IMAGES = 4
QUESTION_MAX = 2_000
MAX_ANALYZED = 16
MODELS_TTL_SECONDS = 300
SWEEP_MARGIN_SECONDS = 60
CUT_SHORT_SECONDS = 15
"""How long shutdown waits for generations it stopped to be recorded."""
RETIRING_SOON = timedelta(days=30)
"""A model retiring within this long is worth a warning: time to choose another."""
INTERRUPTED = "the server stopped before the generation finished; try again"


@dataclass(frozen=True, slots=True)
class ImageFailure:
    """Why an image was not made: that of the image at `index`, or, with no index, of the whole
    generation (the references could not be described, nothing could be stored). Stored as JSON
    in `Generation.errors`."""

    index: int | None
    code: ErrorCode
    message: str

    def as_json(self) -> dict[str, object]:
        return {"index": self.index, "code": self.code.value, "message": self.message}

    @classmethod
    def of_json(cls, stored: dict[str, object]) -> ImageFailure:
        index = stored.get("index")
        return cls(
            index if isinstance(index, int) else None,
            ErrorCode(stored["code"]),
            str(stored.get("message", "")),
        )

    @property
    def order(self) -> tuple[bool, int]:
        """The whole generation's failures first, then the images' by position."""
        return self.index is not None, self.index or 0


class GenerationStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FAILURE_CODES = {
    Failure.REFUSED: ErrorCode.CONTENT_REFUSED,
    Failure.RATE_LIMITED: ErrorCode.RATE_LIMITED,
    Failure.TIMEOUT: ErrorCode.PROVIDER_TIMEOUT,
    Failure.MISCONFIGURED: ErrorCode.PROVIDER_MISCONFIGURED,
    Failure.UNAVAILABLE: ErrorCode.PROVIDER_UNAVAILABLE,
    Failure.BAD_RESPONSE: ErrorCode.PROVIDER_ERROR,
}


def provider_error(error: ProviderError, field: Sequence[str] | None = None) -> DomainError:
    return DomainError(FAILURE_CODES[error.failure], error.message, field)


@dataclass(frozen=True, slots=True)
class ImageDefaults:
    image_model: str
    vision_model: str
    size: str
    quality: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    chat: Place
    prompt: str
    image_count: int = 1
    reference_ids: Sequence[int] = ()
    with_context: bool = False
    model: str | None = None
    size: str | None = None
    quality: str | None = None


@dataclass(frozen=True, slots=True)
class Generated:
    message: Message
    generation: Generation
    images: list[Image]
    error: DomainError | None
    """Set when no image was made: what the user is told."""


@dataclass(frozen=True, slots=True)
class Analysis:
    text: str
    model: str
    placeholder: bool
    usage: Usage | None
    estimated_cost_usd: float | None


@dataclass(frozen=True, slots=True)
class ModelState:
    name: str
    listed: bool | None
    """Whether the provider lists the model; None when it could not be asked."""
    shutdown_date: date | None

    def warning(self, today: date) -> str | None:
        """What to tell about the model: missing, retired, or retiring soon; None otherwise."""
        if self.listed is False:
            return "the provider does not offer this model"
        if self.shutdown_date is None:
            return None
        if self.shutdown_date <= today:
            return f"retired on {self.shutdown_date.isoformat()}"
        if self.shutdown_date - today <= RETIRING_SOON:
            return f"retires on {self.shutdown_date.isoformat()}; choose another model"
        return None


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    configured: bool
    provider: str
    image_model: ModelState
    vision_model: ModelState
    error: DomainError | None
