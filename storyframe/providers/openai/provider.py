"""Images and descriptions from OpenAI, through the official SDK (`openai`, over httpx2).

Calls made:

- `images.generate` (`POST /images/generations`) for a prompt alone, `images.edit`
  (`POST /images/edits`, multipart, the references as `image[]` parts) when the call has
  reference images and the model takes some;
- `chat.completions.create` (`POST /chat/completions`) with the images as data URLs, to
  describe them, or with text alone, to answer a prompt (`complete`);
- `models.list` (`GET /models`, paged) for the models offered and their shutdown dates.

A call for one image with previews wanted (`ImageCall.previews`) and a sink for them streams:
the same method with `stream=True` and `partial_images`, answered as server-sent events
(`image_generation.partial_image` / `image_edit.partial_image`, then
`image_generation.completed` / `image_edit.completed` with the image and the call's `usage`).
Each partial is handed to the sink as it arrives; the completed event makes the result.

Image calls are never retried by the SDK (see `_IMAGE_CALL_RETRIES`); only a 429 is retried,
here, waiting what the provider asks. Answers given as URLs are downloaded at once, since
those URLs expire. Errors become `ProviderError`s with a short message that never holds the
API key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal, TypeVar, cast

import httpx2
import openai
from openai import AsyncStream
from openai.types import ImageEditStreamEvent, ImageGenStreamEvent, ImagesResponse
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionContentPartParam,
    ChatCompletionUserMessageParam,
)

from storyframe.domain.image_provider import (
    DESCRIBE_REFERENCES,
    CallResult,
    Description,
    Failure,
    ImageCall,
    Partial,
    PartialSink,
    Produced,
    ProviderError,
    Reference,
    RemoteModel,
    Usage,
    offer_partial,
)
from storyframe.domain.jobs import slot_lent
from storyframe.domain.model_catalogue import image_model
from storyframe.providers.openai.answers import (
    NO_QUOTA,
    completed,
    count_or,
    data_url,
    decoded,
    error_codes,
    image_usage,
    provider_error,
    retry_after,
    shutdown_date,
    stream_error,
    tokens,
)

__all__ = ["OpenAIProvider", "Sleep", "build_openai_provider"]

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
"""How the provider waits before retrying a 429; `asyncio.sleep` unless a test says otherwise."""

# The SDK must never retry an image call on its own: after a timeout or a 5xx the provider may
# already have made (and billed) the images, and a retried call would pay for them twice. Only
# a 429 is retried, by `_rate_limited`, since the provider refused it before doing any work.
_IMAGE_CALL_RETRIES: Final = 0
_MODELS_TIMEOUT: Final = 10.0

# What `ImageCall.quality` holds (catalog qualities) in the SDK's terms; both image methods
# take these four.
_Quality = Literal["low", "medium", "high", "auto"]

_ImageStream = AsyncStream[ImageGenStreamEvent] | AsyncStream[ImageEditStreamEvent]
_PARTIAL_EVENTS: Final = frozenset({"image_generation.partial_image", "image_edit.partial_image"})
_COMPLETED_EVENTS: Final = frozenset({"image_generation.completed", "image_edit.completed"})


class OpenAIProvider:
    """`ImageProvider` on OpenAI. Build it with `build_openai_provider`."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        downloads: httpx2.AsyncClient,
        *,
        image_timeout: float,
        rate_limit_retries: int,
        max_retry_wait: float,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._images = client.with_options(max_retries=_IMAGE_CALL_RETRIES, timeout=image_timeout)
        self._downloads = downloads
        self._image_timeout = image_timeout
        self._rate_limit_retries = rate_limit_retries
        self._max_retry_wait = max_retry_wait
        self._sleep = sleep

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The app's one SDK client."""
        return self._client

    @property
    def placeholder(self) -> bool:
        return False

    @property
    def name(self) -> str:
        return "openai"

    # Images ---------------------------------------------------------------------------------

    async def generate(self, call: ImageCall, on_partial: PartialSink | None = None) -> CallResult:
        if call.previews > 0 and on_partial is not None:
            return await self._streamed(call, on_partial)
        try:
            response = await self._rate_limited(lambda: self._image_call(call))
        except openai.OpenAIError as error:
            raise provider_error(error, model=call.model) from error
        if not isinstance(response, ImagesResponse):
            raise ProviderError(Failure.BAD_RESPONSE, "OpenAI answered something other than images")
        items = response.data or []
        images = await asyncio.gather(*(self._image_bytes(item) for item in items))
        produced = [
            Produced(data, item.revised_prompt)
            for item, data in zip(items, images, strict=True)
            if data
        ]
        if not produced:
            raise ProviderError(
                Failure.BAD_RESPONSE,
                f"OpenAI answered without a usable image ({len(items)} of {call.count} given)",
                usage=image_usage(response.usage),  # billed all the same
            )
        return CallResult(produced, image_usage(response.usage))

    def _references(self, call: ImageCall) -> list[tuple[str, bytes, str]]:
        """The reference images sent (as `image[]` parts of an edit), within the model's limit;
        none when the model takes none."""
        limit = image_model(call.model).max_reference_images
        if not call.references or limit <= 0:
            return []
        return [(ref.filename, ref.data, ref.content_type) for ref in call.references[:limit]]

    def _arguments(self, call: ImageCall) -> dict[str, Any]:
        """What both image methods are given for the call; with references, the edit endpoint
        (`image`) is the one to call."""
        arguments: dict[str, Any] = {
            "model": call.model,
            "prompt": call.prompt,
            "n": call.count,
            "size": call.size,
            # the catalog's qualities, which the SDK types as literals
            "quality": cast(_Quality, call.quality),
        }
        files = self._references(call)
        if files:
            arguments["image"] = files
        return arguments

    async def _image_call(self, call: ImageCall) -> ImagesResponse:
        arguments = self._arguments(call)
        images = self._images.images
        answer = await (images.edit if "image" in arguments else images.generate)(**arguments)
        return cast(ImagesResponse, answer)

    # Streamed images ------------------------------------------------------------------------

    async def _stream_call(self, call: ImageCall) -> _ImageStream:
        """`_image_call` as a stream of events, with `call.previews` partial images."""
        arguments = {**self._arguments(call), "n": 1, "partial_images": call.previews}
        images = self._images.images
        stream = await (images.edit if "image" in arguments else images.generate)(
            **arguments, stream=True
        )
        return cast(_ImageStream, stream)

    async def _streamed(self, call: ImageCall, on_partial: PartialSink) -> CallResult:
        """One image, its partials handed to `on_partial` as they arrive. An error answer
        before the stream starts fails as without streaming (a 429 is retried the same way);
        an error event, a broken stream or one that ends without the image fail the call."""
        try:
            # the SDK returns the stream once the answer's headers are in: an error status
            # raises here, as without streaming
            stream = await self._rate_limited(lambda: self._stream_call(call))
        except openai.OpenAIError as error:
            raise provider_error(error, model=call.model) from error
        partials = 0
        try:
            async with stream:
                async for event in stream:
                    kind = getattr(event, "type", None)
                    if kind in _PARTIAL_EVENTS:
                        data = decoded(getattr(event, "b64_json", None))
                        if data is None:  # a preview lost is no failure
                            continue
                        index = count_or(getattr(event, "partial_image_index", None), partials)
                        partials += 1
                        await offer_partial(on_partial, Partial(index, data))
                    elif kind in _COMPLETED_EVENTS:
                        return completed(event, call)
                    # other events (none are documented) are skipped
        except (openai.APIStatusError, openai.APIConnectionError) as error:
            # a connection broken mid-stream (UNAVAILABLE), or no event in time (TIMEOUT)
            raise provider_error(error, model=call.model) from error
        except openai.APIError as error:  # an error event
            raise stream_error(error) from error
        except openai.OpenAIError as error:
            raise provider_error(error, model=call.model) from error
        except ValueError as error:  # an event whose data is not JSON
            raise ProviderError(
                Failure.BAD_RESPONSE, "OpenAI's stream held an unreadable event"
            ) from error
        raise ProviderError(
            Failure.BAD_RESPONSE,
            f"OpenAI's stream ended without the image ({partials} partial images given)",
        )

    async def _rate_limited(self, make: Callable[[], Awaitable[T]]) -> T:
        """`make()`, again after a 429 as long as retries are left and the wait is acceptable."""
        retries = 0
        while True:
            try:
                return await make()
            except openai.RateLimitError as error:
                if error_codes(error) & {NO_QUOTA} or retries >= self._rate_limit_retries:
                    raise
                asked = retry_after(error.response.headers)
                if asked is not None and asked > self._max_retry_wait:
                    raise ProviderError(
                        Failure.RATE_LIMITED,
                        f"OpenAI is rate limiting; it asks to wait {asked:.0f} s, longer than "
                        f"the {self._max_retry_wait:.0f} s allowed",
                        status=429,
                    ) from error
                wait = asked if asked is not None else min(2.0**retries, self._max_retry_wait)
                retries += 1
                async with slot_lent():  # another generation may run meanwhile
                    await self._sleep(max(wait, 0.0))

    async def _image_bytes(self, item: openai.types.Image) -> bytes | None:
        """The bytes of one answered image, or None when they cannot be had."""
        if item.b64_json is not None:
            return decoded(item.b64_json)
        if item.url is not None:
            try:
                response = await self._downloads.get(item.url)
            except (httpx2.HTTPError, httpx2.InvalidURL):
                return None
            return (response.content or None) if response.is_success else None
        return None

    # Descriptions and models ----------------------------------------------------------------

    async def describe_references(self, images: Sequence[Reference], model: str) -> Description:
        return await self._ask(images, DESCRIBE_REFERENCES, model)

    async def analyze(self, images: Sequence[Reference], question: str, model: str) -> Description:
        return await self._ask(images, question, model)

    async def complete(self, prompt: str, model: str) -> Description:
        message: ChatCompletionUserMessageParam = {"role": "user", "content": prompt}
        return await self._chat(message, model, "to answer", "answer")

    async def _ask(self, images: Sequence[Reference], instruction: str, model: str) -> Description:
        content: list[ChatCompletionContentPartParam] = [{"type": "text", "text": instruction}]
        content += [
            {"type": "image_url", "image_url": {"url": data_url(image)}} for image in images
        ]
        message: ChatCompletionUserMessageParam = {"role": "user", "content": content}
        return await self._chat(message, model, "to describe the images", "description")

    async def _chat(
        self, message: ChatCompletionUserMessageParam, model: str, refused: str, answer: str
    ) -> Description:
        """The model's text answer to one user message; `refused` says what it would not do,
        `answer` what an empty answer lacks."""
        try:
            response = await self._client.chat.completions.create(
                model=model, messages=[message], timeout=self._image_timeout / 3
            )
        except openai.OpenAIError as error:
            raise provider_error(error, model=model) from error
        if not isinstance(response, ChatCompletion):
            raise ProviderError(Failure.BAD_RESPONSE, "OpenAI answered something other than text")
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "").strip() if choice is not None else ""
        if not text:
            if choice is not None and (
                choice.message.refusal or choice.finish_reason == "content_filter"
            ):
                raise ProviderError(Failure.REFUSED, f"OpenAI refused {refused}")
            raise ProviderError(Failure.BAD_RESPONSE, f"OpenAI gave an empty {answer}")
        usage = (
            None
            if response.usage is None
            else Usage(
                input_text_tokens=tokens(response.usage, "prompt_tokens"),
                output_tokens=tokens(response.usage, "completion_tokens"),
            )
        )
        return Description(text, model=response.model or model, usage=usage)

    async def models(self) -> list[RemoteModel]:
        try:
            return [
                RemoteModel(model.id, shutdown_date(getattr(model, "shutdown_date", None)))
                async for model in self._client.models.list(timeout=_MODELS_TIMEOUT)
            ]
        except openai.OpenAIError as error:
            raise provider_error(error) from error

    async def aclose(self) -> None:
        # `self._images` shares the HTTP client of `self._client`.
        try:
            await self._client.close()
        finally:
            await self._downloads.aclose()


def build_openai_provider(
    *,
    api_key: str,
    base_url: str | None,
    image_timeout: float,
    rate_limit_retries: int,
    max_retry_wait: float,
    sleep: Sleep = asyncio.sleep,
) -> OpenAIProvider:
    """A provider with one SDK client (`base_url` None: the SDK reads `OPENAI_BASE_URL`, else
    uses OpenAI's) and one HTTP client for downloading images answered as URLs."""
    client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url)
    downloads = httpx2.AsyncClient(timeout=image_timeout, follow_redirects=True)
    return OpenAIProvider(
        client,
        downloads,
        image_timeout=image_timeout,
        rate_limit_retries=rate_limit_retries,
        max_retry_wait=max_retry_wait,
        sleep=sleep,
    )
