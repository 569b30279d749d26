"""Expected failures of the domain. The API shows them as `userErrors` with these codes."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum


class ErrorCode(Enum):
    BLANK = "BLANK"
    TOO_LONG = "TOO_LONG"
    INVALID = "INVALID"
    INVALID_ID = "INVALID_ID"
    WRONG_TYPE = "WRONG_TYPE"
    NOT_FOUND = "NOT_FOUND"
    NOT_IN_PLACE = "NOT_IN_PLACE"
    SAME_PLACE = "SAME_PLACE"
    TAKEN = "TAKEN"
    LIMIT_REACHED = "LIMIT_REACHED"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    RATE_LIMITED = "RATE_LIMITED"
    TOO_LARGE = "TOO_LARGE"
    UNSUPPORTED_TYPE = "UNSUPPORTED_TYPE"
    CORRUPT_IMAGE = "CORRUPT_IMAGE"
    CONTENT_REFUSED = "CONTENT_REFUSED"
    PROVIDER_TIMEOUT = "PROVIDER_TIMEOUT"
    PROVIDER_MISCONFIGURED = "PROVIDER_MISCONFIGURED"
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    STORAGE_FAILED = "STORAGE_FAILED"
    CANCELLED = "CANCELLED"
    INTERRUPTED = "INTERRUPTED"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    MISSING_SELECTION = "MISSING_SELECTION"
    """Frames to export have no selected image."""
    EMPTY_VIDEO = "EMPTY_VIDEO"
    EXPORT_FAILED = "EXPORT_FAILED"


class DomainError(Exception):
    """An expected failure: bad input, a missing object, a conflict. Nothing was changed."""

    def __init__(self, code: ErrorCode, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field) if field is not None else None


class NotFound(DomainError):
    def __init__(self, what: str, field: Sequence[str] | None = None) -> None:
        super().__init__(ErrorCode.NOT_FOUND, f"{what} not found", field)


class LimitReached(DomainError):
    """A list is at its stored bound (frames of a video, places of an image…): nothing added."""

    def __init__(self, message: str, field: Sequence[str]) -> None:
        super().__init__(ErrorCode.LIMIT_REACHED, message, field)


class Unauthenticated(Exception):
    """The request carries no valid token, and what it asks for needs one."""

    def __init__(self) -> None:
        super().__init__("log in to do this: send `Authorization: Bearer <token>`")
