"""What a diagnostics check reports: how it went, how long it took, what was sent and what came
back, the images involved and what it cost; and the report as JSON, in which secrets are
redacted and images are described by their size, never sent as bytes."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from PIL import Image, UnidentifiedImageError

from storyframe.domain.image_provider import Usage

REDACTED: Final = "[redacted]"
INTERNAL_ERROR: Final = "INTERNAL_ERROR"
"""The error code of a fault nobody foresaw (its traceback is logged); expected failures carry
an `ErrorCode` or a provider `Failure` value."""

_SECRET_KEYS: Final = frozenset(
    {
        "apikey",
        "authorization",
        "proxyauthorization",
        "token",
        "accesstoken",
        "refreshtoken",
        "password",
        "secret",
        "clientsecret",
        "cloudinaryurl",
        "cookie",
        "setcookie",
    }
)
_SECRET_SUFFIXES: Final = ("apikey", "token", "password", "secret")
_SECRET_PATTERNS: Final = (
    re.compile(r"(?i)\bBearer\s+[^\s\"',;]+"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\bsf_[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)\bcloudinary://[^\s\"']+"),
)
_MIN_SECRET: Final = 4
"""Shorter configured secrets are not searched for in text: they would match everywhere."""


class Suite(StrEnum):
    OPENAI = "OPENAI"
    """The provider itself: text, an image, vision, an edit, the models' lifecycle."""
    API = "API"
    """The product's own path, through the services as a user would go."""


class CheckStatus(StrEnum):
    PASSED = "PASSED"
    """It worked; a `warning` may still say what needs attention soon."""
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    """Not run: `skipped_reason` says why (its cost, a check it needed)."""


@dataclass(frozen=True, slots=True)
class CheckImage:
    """An image a check sent or received."""

    content_type: str
    data: bytes = field(repr=False)
    width: int
    height: int

    @classmethod
    def read(cls, data: bytes) -> CheckImage | None:
        """The image the bytes hold, or None when they are no readable image."""
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                content_type = Image.MIME.get(image.format or "", "application/octet-stream")
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            return None
        return cls(content_type, data, width, height)

    def as_json(self) -> dict[str, Any]:
        return {
            "contentType": self.content_type,
            "bytes": len(self.data),
            "width": self.width,
            "height": self.height,
        }


@dataclass(slots=True)
class CheckResult:
    """How one check went."""

    name: str
    """A stable machine name, such as `openai.image` or `api.full_flow`."""
    title: str
    status: CheckStatus
    duration_ms: float | None = None
    detail: str = ""
    """One line for people."""
    warning: str | None = None
    skipped_reason: str | None = None
    request: dict[str, Any] | None = None
    """What was sent, as JSON, secrets redacted and images described by their size."""
    response: dict[str, Any] | None = None
    """What came back, the same way."""
    input_images: list[CheckImage] = field(default_factory=list)
    output_images: list[CheckImage] = field(default_factory=list)
    error_code: str | None = None
    """An `ErrorCode` value, a provider `Failure` value, or `INTERNAL_ERROR`."""
    error: str | None = None
    estimated_cost_usd: float | None = None

    def fail(self, code: str, message: str, detail: str | None = None) -> None:
        """Mark the check FAILED with an error code and a message."""
        self.status = CheckStatus.FAILED
        self.error_code = code
        self.error = message
        self.detail = one_line(detail if detail is not None else f"{code}: {message}")

    def as_json(self) -> dict[str, Any]:
        """The result with camelCase names; images as their type, size and dimensions."""
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status.value,
            "durationMs": self.duration_ms,
            "detail": self.detail,
            "warning": self.warning,
            "skippedReason": self.skipped_reason,
            "request": self.request,
            "response": self.response,
            "inputImages": [image.as_json() for image in self.input_images],
            "outputImages": [image.as_json() for image in self.output_images],
            "errorCode": self.error_code,
            "error": self.error,
            "estimatedCostUsd": self.estimated_cost_usd,
        }


def failed(results: Sequence[CheckResult]) -> bool:
    """Whether any check of a run FAILED."""
    return any(result.status is CheckStatus.FAILED for result in results)


def total_cost(results: Sequence[CheckResult]) -> float:
    """What the checks of a run cost, as estimated from what each was billed."""
    return sum(result.estimated_cost_usd or 0.0 for result in results)


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, cut at `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "\u2026"


def usage_json(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "inputTextTokens": usage.input_text_tokens,
        "inputImageTokens": usage.input_image_tokens,
        "outputTokens": usage.output_tokens,
    }


def redacted(value: Any, secrets: Sequence[str] = ()) -> Any:
    """`value` (JSON) with every secret replaced by "[redacted]": the values of keys that name
    one (API keys, tokens, Authorization headers, passwords), bearer tokens and API keys found
    in text, and each of `secrets` wherever it appears."""
    if isinstance(value, dict):
        return {key: _redacted_item(key, item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item, secrets) for item in value]
    if isinstance(value, str):
        return scrubbed(value, secrets)
    return value


def _redacted_item(key: object, item: Any, secrets: Sequence[str]) -> Any:
    return REDACTED if _secret_key(key) and item is not None else redacted(item, secrets)


def scrubbed(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` with bearer tokens, API keys and each of `secrets` replaced by "[redacted]"."""
    for secret in secrets:
        if len(secret) >= _MIN_SECRET:
            text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    plain = key.lower().replace("_", "").replace("-", "")
    return plain in _SECRET_KEYS or plain.endswith(_SECRET_SUFFIXES)
