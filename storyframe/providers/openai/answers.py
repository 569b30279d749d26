"""What OpenAI answers, read into Storyframe's terms: images, usage, dates, retry waits, and
errors as `ProviderError`s with a short message that never holds the API key."""

from __future__ import annotations

import base64
import binascii
import email.utils
import math
import time
from collections.abc import Mapping
from datetime import date, datetime
from typing import Final

import openai

from storyframe.domain.image_provider import (
    CallResult,
    Failure,
    ImageCall,
    Produced,
    ProviderError,
    Reference,
    Usage,
)

NO_QUOTA: Final = "insufficient_quota"
_MAX_MESSAGE: Final = 300
_REFUSAL_CODES: Final = frozenset({"content_policy_violation", "moderation_blocked"})
_SERVER_ERROR: Final = "server_error"


def completed(event: object, call: ImageCall) -> CallResult:
    """The result a stream's completed event makes: its image and the call's usage."""
    usage = image_usage(getattr(event, "usage", None))
    data = decoded(getattr(event, "b64_json", None))
    if data is None:
        raise ProviderError(
            Failure.BAD_RESPONSE,
            "OpenAI completed the stream without a usable image",
            usage=usage,  # billed all the same
        )
    return CallResult([Produced(data)], usage)


def decoded(b64: object) -> bytes | None:
    """The bytes of base64 image data, or None when it is none or not base64."""
    if not isinstance(b64, str):
        return None
    try:
        return base64.b64decode(b64, validate=True) or None
    except (binascii.Error, ValueError):
        return None


def count_or(value: object, default: int) -> int:
    """`value` if it is a count, else `default`."""
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )


def image_usage(usage: object) -> Usage | None:
    """The usage an image answer reports (the `usage` of an `ImagesResponse`, or of a stream's
    completed event: both have the same fields)."""
    if usage is None:
        return None
    output = tokens(usage, "output_tokens")
    details = getattr(usage, "input_tokens_details", None)
    if details is None:
        return Usage(input_text_tokens=tokens(usage, "input_tokens"), output_tokens=output)
    return Usage(
        input_text_tokens=tokens(details, "text_tokens"),
        input_image_tokens=tokens(details, "image_tokens"),
        output_tokens=output,
    )


def tokens(usage: object, name: str) -> int:
    """A token count of an answer. The SDK does not check answers' types, and OpenAI-compatible
    servers may leave counts out or null: anything but a count is taken as 0."""
    value = getattr(usage, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def data_url(image: Reference) -> str:
    return f"data:{image.content_type};base64,{base64.b64encode(image.data).decode('ascii')}"


def shutdown_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait that `retry-after-ms` or `Retry-After` (seconds or an HTTP date) ask."""
    for header, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


# Errors -------------------------------------------------------------------------------------


def error_codes(error: openai.APIError) -> set[str]:
    """The error's `code` and `type`, from the body's `error` object."""
    return {value for value in (error.code, error.type) if value}


def provider_message(error: openai.APIError) -> str:
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    text = message if isinstance(message, str) and message.strip() else "no message"
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def stream_error(error: openai.APIError) -> ProviderError:
    """The `ProviderError` for an error event in a stream (the SDK raises it as an `APIError`
    whose body is the event's `error` object): a moderation refusal is REFUSED, a
    `server_error` UNAVAILABLE (as a 5xx is), anything else BAD_RESPONSE."""
    codes = error_codes(error)
    message = provider_message(error)
    if codes & _REFUSAL_CODES:
        return ProviderError(Failure.REFUSED, f"OpenAI's moderation stopped the image: {message}")
    if _SERVER_ERROR in codes:
        return ProviderError(Failure.UNAVAILABLE, f"OpenAI failed while streaming: {message}")
    return ProviderError(Failure.BAD_RESPONSE, f"OpenAI's stream failed: {message}")


def provider_error(error: openai.OpenAIError, *, model: str | None = None) -> ProviderError:
    """The `ProviderError` for an SDK error. Messages never quote the key; the 401 message (which
    quotes part of it) is left out."""
    if isinstance(error, openai.APITimeoutError):
        return ProviderError(Failure.TIMEOUT, "OpenAI did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return ProviderError(Failure.UNAVAILABLE, "OpenAI could not be reached")
    if not isinstance(error, openai.APIStatusError):
        return ProviderError(Failure.BAD_RESPONSE, f"OpenAI's answer was unusable: {error}")
    status = error.status_code
    codes = error_codes(error)
    named = f"model {model!r}" if model else "the model"
    failure, message = Failure.BAD_RESPONSE, f"OpenAI answered {status}: {provider_message(error)}"
    if status == 400 and codes & _REFUSAL_CODES:
        failure = Failure.REFUSED
        message = f"OpenAI's moderation refused the request: {provider_message(error)}"
    elif status == 401:
        failure, message = Failure.MISCONFIGURED, "OpenAI rejected the API key (401)"
    elif status == 403:
        failure = Failure.MISCONFIGURED
        message = f"the API key has no access to {named} (403): {provider_message(error)}"
    elif status == 404:
        failure = Failure.MISCONFIGURED
        message = f"OpenAI does not know {named} (404): {provider_message(error)}"
    elif status == 429 and NO_QUOTA in codes:
        failure = Failure.MISCONFIGURED
        message = "the OpenAI account has no quota left (429 insufficient_quota)"
    elif status == 429:
        failure, message = Failure.RATE_LIMITED, "OpenAI is rate limiting, still after retries"
    elif status == 408:
        failure, message = Failure.TIMEOUT, "OpenAI timed out the request (408)"
    elif status >= 500:
        failure, message = Failure.UNAVAILABLE, f"OpenAI failed ({status})"
    return ProviderError(failure, message, status=status)
