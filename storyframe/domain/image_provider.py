"""What generation needs from an image provider: OpenAI, or placeholders made offline.

A provider makes images and describes them. It hands back bytes, never URLs: a provider whose
API answers with URLs downloads them before returning, since such URLs expire.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final, Protocol

log = logging.getLogger("storyframe.providers")

MAX_PARTIAL_IMAGES: Final = 3
"""The most previews (partial images) a call may ask for, as the Images API allows."""


class Failure(StrEnum):
    """Why a provider call made nothing, in terms a user can act on."""

    REFUSED = "REFUSED"
    """The provider's moderation refused the prompt or a reference image."""
    RATE_LIMITED = "RATE_LIMITED"
    """Too many requests, still after the retries the provider allows."""
    TIMEOUT = "TIMEOUT"
    """No answer in time."""
    MISCONFIGURED = "MISCONFIGURED"
    """The key is wrong or lacks access, or the model does not exist (401, 403, 404)."""
    UNAVAILABLE = "UNAVAILABLE"
    """The provider failed (5xx) or could not be reached."""
    BAD_RESPONSE = "BAD_RESPONSE"
    """An answer that is not what was asked for: no image, bytes that are no image, a 400."""


class ProviderError(Exception):
    def __init__(
        self,
        failure: Failure,
        message: str,
        *,
        status: int | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.status = status
        self.usage = usage
        """What the failed call was billed for, when it answered (with no usable image)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a call used, as the provider reported them."""

    input_text_tokens: int = 0
    input_image_tokens: int = 0
    output_tokens: int = 0

    @property
    def input_tokens(self) -> int:
        return self.input_text_tokens + self.input_image_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_text_tokens + other.input_text_tokens,
            self.input_image_tokens + other.input_image_tokens,
            self.output_tokens + other.output_tokens,
        )


@dataclass(frozen=True, slots=True)
class Reference:
    """An image sent along with a prompt, as bytes."""

    data: bytes
    content_type: str
    filename: str


@dataclass(frozen=True, slots=True)
class ImageCall:
    """One call to the provider for `count` images of one prompt."""

    prompt: str
    model: str
    count: int
    size: str
    quality: str
    references: Sequence[Reference] = ()
    caption: str = ""
    """A title to show on placeholder images (the frame's title, the chat's name)."""
    first_index: int = 0
    """The position of the call's first image among all images of the generation."""
    partial_images: int = 0
    """Previews wanted of the image while it renders (0 to MAX_PARTIAL_IMAGES); only
    meaningful when `count == 1`, since a stream of partial images does not say which image of
    a call a partial belongs to."""

    @property
    def previews(self) -> int:
        """How many partial images a provider streams for this call, given a sink for them:
        `partial_images` capped at MAX_PARTIAL_IMAGES, and none unless `count == 1`."""
        if self.count != 1:
            return 0
        return max(0, min(self.partial_images, MAX_PARTIAL_IMAGES))


@dataclass(frozen=True, slots=True)
class Produced:
    """One image a call made, downloaded."""

    data: bytes
    revised_prompt: str | None = None


@dataclass(frozen=True, slots=True)
class Partial:
    """A preview of an image still rendering: a low-detail version of the final picture."""

    index: int
    """Its sequence number among the call's partials, from 0."""
    data: bytes
    """The encoded image (PNG, JPEG or WebP), as the provider sent it."""


PartialSink = Callable[[Partial], Awaitable[None]]
"""What a provider hands each partial image to while a call renders."""


async def offer_partial(sink: PartialSink, partial: Partial) -> None:
    """Hands `partial` to `sink`. A sink that fails does not fail the call: the error is logged
    and the call goes on (cancellation still propagates)."""
    try:
        await sink(partial)
    except Exception:
        log.exception("a partial image could not be passed on", extra={"index": partial.index})


@dataclass(frozen=True, slots=True)
class CallResult:
    images: list[Produced]
    usage: Usage | None = None


DESCRIBE_REFERENCES = (
    "These are reference images for an image generator. Describe what must carry over into a "
    "new image: characters (face, hair, build, clothing), objects, setting, art style, colours, "
    "lighting and composition. Be concrete and brief, in one paragraph, with no preamble."
)
"""What a vision model is asked about a generation's reference images."""


@dataclass(frozen=True, slots=True)
class Description:
    """What a vision model said about images."""

    text: str
    model: str
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class RemoteModel:
    """A model the provider lists, with the shutdown date it announces."""

    id: str
    shutdown_date: date | None = None


class ImageProvider(Protocol):
    @property
    def placeholder(self) -> bool:
        """True when the images are made offline rather than by a model."""
        ...

    @property
    def name(self) -> str:
        """`openai` or `placeholder`."""
        ...

    async def generate(self, call: ImageCall, on_partial: PartialSink | None = None) -> CallResult:
        """Make `call.count` images (at most; fewer is a partial result), raising ProviderError
        when none could be made. `call.references`, when given, are passed to the model.

        With `on_partial` given, `call.count == 1` and `call.partial_images > 0` (see
        `ImageCall.previews`), the provider streams: it awaits `on_partial` for each preview of
        the image as it arrives (up to `call.previews` of them, in order of their index from 0;
        a preview that arrives unusable is skipped), all before it returns the final result.
        An exception raised by `on_partial` does not fail the call: it is logged and the call
        goes on (`offer_partial`). Otherwise the call behaves as without streaming."""
        ...

    async def describe_references(self, images: Sequence[Reference], model: str) -> Description:
        """Describe, with a vision model, what of the images must carry over into a new image
        (`DESCRIBE_REFERENCES`); the description is appended to a generation's prompt. Raises
        ProviderError."""
        ...

    async def analyze(self, images: Sequence[Reference], question: str, model: str) -> Description:
        """Answer a person's `question` about the images with a vision model. Raises
        ProviderError."""
        ...

    async def complete(self, prompt: str, model: str) -> Description:
        """Answer a text `prompt` with the text (vision) model, no images. Raises
        ProviderError."""
        ...

    async def models(self) -> list[RemoteModel]:
        """The models the provider offers now. Raises ProviderError."""
        ...

    async def aclose(self) -> None:
        """Release connections; called once at shutdown."""
