"""OpenAIProvider through the real openai SDK, against a fake OpenAI over HTTP on loopback."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from typing import Any, Protocol

import httpx2
import openai
import pytest
from PIL import Image

from storyframe.domain.image_provider import (
    DESCRIBE_REFERENCES,
    Failure,
    ImageCall,
    ImageProvider,
    Partial,
    ProviderError,
    Reference,
    RemoteModel,
    Usage,
)
from storyframe.domain.jobs import current_lender
from storyframe.domain.model_catalogue import image_model
from storyframe.providers.openai import OpenAIProvider, build_openai_provider
from tests.support.fake_openai import (
    CHAT_IMAGE_TOKENS,
    IMAGE_INPUT_TOKENS,
    IMAGE_OUTPUT_TOKENS,
    PARTIAL_OUTPUT_TOKENS,
    FakeOpenAI,
    StreamBreak,
    fake_openai_fixture,  # noqa: F401
    image_urls,
)
from tests.support.polling import until

MODEL = "gpt-image-2.6-flare"
PROMPT = "A lighthouse on a cliff at dusk, gulls circling, painted in thick oils"


class Make(Protocol):
    def __call__(
        self,
        *,
        base_url: str | None = ...,
        api_key: str | None = ...,
        image_timeout: float = ...,
        rate_limit_retries: int = ...,
        max_retry_wait: float = ...,
    ) -> OpenAIProvider: ...


class Waits(list[float]):
    """The waits the provider asked of its injected sleep."""

    async def sleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
async def make(fake_openai: FakeOpenAI, waits: Waits) -> AsyncIterator[Make]:
    """Builds providers aimed at the fake (unless told otherwise), closed at teardown."""
    made: list[OpenAIProvider] = []

    def build(
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        image_timeout: float = 10.0,
        rate_limit_retries: int = 2,
        max_retry_wait: float = 20.0,
    ) -> OpenAIProvider:
        provider = build_openai_provider(
            api_key=api_key or fake_openai.api_key,
            base_url=base_url or fake_openai.base_url,
            image_timeout=image_timeout,
            rate_limit_retries=rate_limit_retries,
            max_retry_wait=max_retry_wait,
            sleep=waits.sleep,
        )
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


@pytest.fixture
def provider(make: Make) -> OpenAIProvider:
    return make()


def _call(
    count: int = 1, references: int = 0, model: str = MODEL, partial_images: int = 0
) -> ImageCall:
    return ImageCall(
        prompt=PROMPT,
        model=model,
        count=count,
        size="1536x1024",
        quality="medium",
        references=[_reference(i) for i in range(references)],
        partial_images=partial_images,
    )


class Partials:
    """A sink for partial images that keeps them; `arrived` is set once `until` have come."""

    def __init__(self, until: int = 1) -> None:
        self.got: list[Partial] = []
        self.until = until
        self.arrived = asyncio.Event()

    async def __call__(self, partial: Partial) -> None:
        self.got.append(partial)
        if len(self.got) >= self.until:
            self.arrived.set()

    @property
    def indexes(self) -> list[int]:
        return [partial.index for partial in self.got]


def _reference(index: int) -> Reference:
    buffer = BytesIO()
    Image.new("RGB", (8 + index, 8), (index * 10 % 256, 50, 200)).save(buffer, format="PNG")
    return Reference(buffer.getvalue(), "image/png", f"reference-{index}.png")


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


async def _failure(call: Awaitable[Any]) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await call
    return caught.value


def _rewrite_images(change: Callable[[dict[str, Any]], None]) -> Callable[..., dict[str, Any]]:
    def rewrite(endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        if endpoint in ("generations", "edits"):
            change(payload)
        return payload

    return rewrite


# Images -------------------------------------------------------------------------------------


async def test_is_an_image_provider(provider: OpenAIProvider) -> None:
    typed: ImageProvider = provider
    assert (typed.name, typed.placeholder) == ("openai", False)


async def test_generate_asks_for_n_images_and_returns_them_decoded(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    result = await provider.generate(_call(count=3))

    assert len(result.images) == 3
    assert len({image.data for image in result.images}) == 3
    assert all(_size(image.data) == (64, 64) for image in result.images)
    assert all(image.revised_prompt is None for image in result.images)
    (request,) = fake_openai.requests_to("generations")
    assert request.json == {
        "model": MODEL,
        "prompt": PROMPT,
        "n": 3,
        "size": "1536x1024",
        "quality": "medium",
    }
    assert request.authorization == f"Bearer {fake_openai.api_key}"
    assert fake_openai.requests_to("edits") == []


async def test_generate_reports_the_usage_the_answer_gives(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    result = await provider.generate(_call(count=2))

    assert result.usage == Usage(
        input_text_tokens=len(PROMPT) // 4,
        input_image_tokens=0,
        output_tokens=2 * IMAGE_OUTPUT_TOKENS,
    )
    prices = image_model(MODEL).prices
    assert prices is not None
    assert image_model(MODEL).estimate(result.usage, 2, "medium") == pytest.approx(
        (len(PROMPT) // 4 * prices.text_input + 2 * IMAGE_OUTPUT_TOKENS * prices.output) / 1e6
    )


async def test_usage_without_details_counts_every_input_token_as_text(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.rewrite = _rewrite_images(lambda p: p["usage"].pop("input_tokens_details"))

    result = await provider.generate(_call())

    assert result.usage == Usage(
        input_text_tokens=len(PROMPT) // 4, output_tokens=IMAGE_OUTPUT_TOKENS
    )


@pytest.mark.parametrize(
    "usage",
    [
        pytest.param({"output_tokens": None, "input_tokens_details": None}, id="nulls"),
        pytest.param(
            {"output_tokens": "many", "input_tokens_details": {"text_tokens": -3}},
            id="not-counts",
        ),
        pytest.param({"total_tokens": 5}, id="only-a-total"),
    ],
)
async def test_usage_counts_that_are_missing_or_not_counts_are_zero(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, usage: dict[str, Any]
) -> None:
    # given an OpenAI-compatible server that reports its usage its own way
    fake_openai.rewrite = _rewrite_images(lambda p: p.update(usage=usage))

    # when
    result = await provider.generate(_call())

    # then the image is there, and the usage holds only counts
    assert len(result.images) == 1
    assert result.usage == Usage()
    assert image_model(MODEL).estimate(result.usage, 1, "medium") == 0


async def test_usage_is_none_when_the_answer_has_none(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.rewrite = _rewrite_images(lambda p: p.pop("usage"))

    result = await provider.generate(_call())

    assert len(result.images) == 1
    assert result.usage is None


async def test_revised_prompts_are_kept(fake_openai: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake_openai.revised_prompt = "A lighthouse, revised"

    result = await provider.generate(_call(count=2))

    assert [image.revised_prompt for image in result.images] == ["A lighthouse, revised"] * 2


async def test_references_go_to_the_edit_endpoint_capped_at_the_models_limit(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    limit = image_model(MODEL).max_reference_images
    call = _call(count=2, references=limit + 2)

    result = await provider.generate(call)

    assert len(result.images) == 2
    assert fake_openai.requests_to("generations") == []
    (request,) = fake_openai.requests_to("edits")
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.fields == {
        "model": MODEL,
        "prompt": PROMPT,
        "n": "2",
        "size": "1536x1024",
        "quality": "medium",
    }
    assert [(f.name, f.filename, f.content_type, f.size) for f in request.files] == [
        ("image[]", ref.filename, "image/png", len(ref.data)) for ref in call.references[:limit]
    ]
    assert [f.data for f in request.files] == [ref.data for ref in call.references[:limit]]
    assert result.usage is not None
    assert result.usage.input_image_tokens == limit * IMAGE_INPUT_TOKENS


async def test_a_model_without_reference_images_generates_from_the_prompt_alone(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    unknown = "gpt-image-unknown"
    assert image_model(unknown).max_reference_images == 0

    await provider.generate(_call(references=2, model=unknown))

    assert fake_openai.requests_to("edits") == []
    (request,) = fake_openai.requests_to("generations")
    assert request.params["model"] == unknown


async def test_images_answered_as_urls_are_downloaded(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.url_mode = True

    result = await provider.generate(_call(count=2))

    assert sorted(image.data for image in result.images) == sorted(fake_openai.files.values())
    assert len(fake_openai.requests_to("files")) == 2
    assert all(not r.authorization for r in fake_openai.requests_to("files"))


async def test_an_image_that_cannot_be_downloaded_is_left_out(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.url_mode = True
    fake_openai.fail("files", status=404)

    result = await provider.generate(_call(count=3))

    assert len(result.images) == 2


@pytest.mark.parametrize("url", ["ftp://example.invalid/image.png", "http://[::1/image.png"])
async def test_an_image_at_an_unusable_url_is_left_out(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, url: str
) -> None:
    fake_openai.url_mode = True
    fake_openai.rewrite = _rewrite_images(lambda p: p["data"][0].update(url=url))

    result = await provider.generate(_call(count=2))

    assert len(result.images) == 1


async def test_undecodable_base64_is_left_out(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.rewrite = _rewrite_images(lambda p: p["data"][0].update(b64_json="*not base64*"))

    result = await provider.generate(_call(count=2))

    assert len(result.images) == 1


async def test_fewer_images_than_asked_is_a_partial_result(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.short_by = 1

    result = await provider.generate(_call(count=3))

    assert len(result.images) == 2
    assert result.usage is not None
    assert result.usage.output_tokens == 2 * IMAGE_OUTPUT_TOKENS


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda p: p.update(data=[]), id="no-data"),
        pytest.param(lambda p: p.pop("data"), id="data-missing"),
        pytest.param(lambda p: p.update(data=[{"b64_json": "%%%"}]), id="all-undecodable"),
        pytest.param(lambda p: p.update(data=[{"revised_prompt": "x"}]), id="neither"),
    ],
)
async def test_no_usable_image_is_a_bad_response(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, change: Callable[[dict[str, Any]], None]
) -> None:
    fake_openai.rewrite = _rewrite_images(change)

    error = await _failure(provider.generate(_call(count=2)))

    assert error.failure is Failure.BAD_RESPONSE
    # the call was answered, so billed: its usage comes with the error
    assert error.usage == Usage(
        input_text_tokens=len(PROMPT) // 4, output_tokens=2 * IMAGE_OUTPUT_TOKENS
    )


async def test_all_downloads_failing_is_a_bad_response(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.url_mode = True
    fake_openai.fail("files", status=500, times=2)

    error = await _failure(provider.generate(_call(count=2)))

    assert error.failure is Failure.BAD_RESPONSE


# Errors of image calls ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "type", "failure"),
    [
        (400, "moderation_blocked", "image_generation_user_error", Failure.REFUSED),
        (400, "content_policy_violation", "invalid_request_error", Failure.REFUSED),
        (400, None, "content_policy_violation", Failure.REFUSED),
        (400, "invalid_value", "invalid_request_error", Failure.BAD_RESPONSE),
        (422, None, "invalid_request_error", Failure.BAD_RESPONSE),
        (401, "invalid_api_key", "invalid_request_error", Failure.MISCONFIGURED),
        (403, "unsupported_country_region_territory", "request_forbidden", Failure.MISCONFIGURED),
        (404, "model_not_found", "invalid_request_error", Failure.MISCONFIGURED),
        (500, None, "server_error", Failure.UNAVAILABLE),
        (502, None, "server_error", Failure.UNAVAILABLE),
        (503, "overloaded", "server_error", Failure.UNAVAILABLE),
    ],
)
async def test_http_errors_of_image_calls_map_to_failures_and_are_never_retried(
    fake_openai: FakeOpenAI,
    provider: OpenAIProvider,
    waits: Waits,
    status: int,
    code: str | None,
    type: str,
    failure: Failure,
) -> None:
    fake_openai.fail(
        "images", status=status, code=code, type=type, message="Your request was rejected."
    )

    error = await _failure(provider.generate(_call(count=2)))

    assert (error.failure, error.status) == (failure, status)
    assert error.message
    assert len(fake_openai.requests_to("images")) == 1
    assert waits == []


async def test_errors_of_edits_map_the_same_way(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.fail("edits", status=400, code="moderation_blocked")

    error = await _failure(provider.generate(_call(references=1)))

    assert error.failure is Failure.REFUSED
    assert len(fake_openai.requests_to("edits")) == 1


async def test_a_bad_request_tells_the_providers_message(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.fail("images", status=400, message="Invalid size '1536x1024' for this model.")

    error = await _failure(provider.generate(_call()))

    assert "Invalid size '1536x1024' for this model." in error.message


async def test_each_misconfiguration_says_what_is_wrong(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    for status in (401, 403, 404):
        fake_openai.fail("images", status=status)
    messages = [(await _failure(provider.generate(_call()))).message for _ in range(3)]

    assert "key" in messages[0]
    assert "access" in messages[1]
    assert MODEL in messages[2]
    assert "know" in messages[2]


async def test_a_wrong_key_is_misconfigured_and_never_quoted(make: Make) -> None:
    key = "sk-wrong-key-abcdefghijklmnop"
    provider = make(api_key=key)

    error = await _failure(provider.generate(_call()))

    assert (error.failure, error.status) == (Failure.MISCONFIGURED, 401)
    assert key not in error.message
    assert key[-4:] not in error.message
    assert key not in str(error)


async def test_a_slow_answer_times_out_once(fake_openai: FakeOpenAI, make: Make) -> None:
    fake_openai.latency = 0.6
    provider = make(image_timeout=0.2)

    error = await _failure(provider.generate(_call()))

    assert error.failure is Failure.TIMEOUT
    assert len(fake_openai.requests_to("images")) == 1


async def test_an_unreachable_provider_is_unavailable(make: Make) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = make(base_url=f"http://127.0.0.1:{port}/v1")

    error = await _failure(provider.generate(_call()))

    assert (error.failure, error.status) == (Failure.UNAVAILABLE, None)


async def test_one_of_four_concurrent_calls_failing_fails_alone(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.gather = 4  # answered only once all four are in flight, if they ever are
    fake_openai.fail("images", status=500, on_call=3)

    results = await asyncio.gather(
        *(provider.generate(_call()) for _ in range(4)), return_exceptions=True
    )

    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1
    assert isinstance(failed[0], ProviderError)
    assert failed[0].failure is Failure.UNAVAILABLE
    assert len(fake_openai.requests_to("images")) == 4
    assert [r.status for r in fake_openai.requests_to("images")].count(500) == 1
    assert fake_openai.max_in_flight == 4


# Streaming ----------------------------------------------------------------------------------


async def test_partials_arrive_in_order_while_the_image_renders(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    # given a stream held by the fake once it has sent two of its three partials
    hold = fake_openai.hold_stream(2)
    partials = Partials(until=2)

    # when
    call = asyncio.create_task(provider.generate(_call(partial_images=3), partials))
    await asyncio.wait_for(partials.arrived.wait(), timeout=10)

    # then the two were handed on while the call is still under way
    assert partials.indexes == [0, 1]
    assert not call.done()
    hold.release()
    result = await asyncio.wait_for(call, timeout=10)
    assert partials.indexes == [0, 1, 2]
    (image,) = result.images
    assert _size(image.data) == (64, 64)
    assert all(_size(partial.data) == (64, 64) for partial in partials.got)
    assert len({partial.data for partial in partials.got} | {image.data}) == 4
    (request,) = fake_openai.requests_to("generations")
    assert request.json == {
        "model": MODEL,
        "prompt": PROMPT,
        "n": 1,
        "size": "1536x1024",
        "quality": "medium",
        "stream": True,
        "partial_images": 3,
    }


async def test_a_stream_is_held_before_its_first_partial(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    hold = fake_openai.hold_stream(0)
    partials = Partials()

    call = asyncio.create_task(provider.generate(_call(partial_images=2), partials))
    assert await asyncio.to_thread(hold.wait)

    assert partials.got == []
    assert not call.done()
    hold.release()
    await asyncio.wait_for(call, timeout=10)
    assert partials.indexes == [0, 1]


async def test_a_paused_stream_sends_nothing_until_resumed(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.pause()
    partials = Partials()

    call = asyncio.create_task(provider.generate(_call(partial_images=2), partials))
    await until(lambda: fake_openai.in_flight == 1)

    assert partials.got == []
    assert not call.done()
    fake_openai.resume()
    await asyncio.wait_for(call, timeout=10)
    assert partials.indexes == [0, 1]


async def test_a_streamed_image_reports_the_completed_events_usage(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    result = await provider.generate(_call(partial_images=2), Partials())

    assert result.usage == Usage(
        input_text_tokens=len(PROMPT) // 4,
        input_image_tokens=0,
        output_tokens=IMAGE_OUTPUT_TOKENS + 2 * PARTIAL_OUTPUT_TOKENS,
    )


async def test_references_stream_through_the_edit_endpoint(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    partials = Partials()
    call = _call(references=2, partial_images=1)

    result = await provider.generate(call, partials)

    assert len(result.images) == 1
    assert partials.indexes == [0]
    assert fake_openai.requests_to("generations") == []
    (request,) = fake_openai.requests_to("edits")
    assert request.fields == {
        "model": MODEL,
        "prompt": PROMPT,
        "n": "1",
        "size": "1536x1024",
        "quality": "medium",
        "stream": "true",
        "partial_images": "1",
    }
    assert [f.data for f in request.files] == [ref.data for ref in call.references]
    assert result.usage == Usage(
        input_text_tokens=len(PROMPT) // 4,
        input_image_tokens=2 * IMAGE_INPUT_TOKENS,
        output_tokens=IMAGE_OUTPUT_TOKENS + PARTIAL_OUTPUT_TOKENS,
    )


@pytest.mark.parametrize(
    ("partial_images", "count", "sink"),
    [
        pytest.param(0, 1, True, id="no-partials-asked"),
        pytest.param(2, 2, True, id="several-images"),
        pytest.param(2, 1, False, id="no-sink"),
    ],
)
async def test_a_call_streams_only_for_one_image_with_partials_and_a_sink(
    fake_openai: FakeOpenAI,
    provider: OpenAIProvider,
    partial_images: int,
    count: int,
    sink: bool,
) -> None:
    partials = Partials()

    result = await provider.generate(
        _call(count=count, partial_images=partial_images), partials if sink else None
    )

    assert len(result.images) == count
    assert partials.got == []
    (request,) = fake_openai.requests_to("generations")
    assert request.json is not None
    assert "stream" not in request.json
    assert "partial_images" not in request.json


@pytest.mark.parametrize(
    ("how", "code", "type", "failure"),
    [
        pytest.param("error", "server_error", "server_error", Failure.UNAVAILABLE, id="server"),
        pytest.param(
            "error",
            "moderation_blocked",
            "image_generation_user_error",
            Failure.REFUSED,
            id="moderation",
        ),
        pytest.param(
            "error", "invalid_value", "invalid_request_error", Failure.BAD_RESPONSE, id="other"
        ),
        pytest.param("drop", None, "server_error", Failure.UNAVAILABLE, id="dropped"),
        pytest.param("end", None, "server_error", Failure.BAD_RESPONSE, id="no-completed"),
    ],
)
async def test_a_stream_failing_midway_fails_the_call_once(
    fake_openai: FakeOpenAI,
    provider: OpenAIProvider,
    waits: Waits,
    how: StreamBreak,
    code: str | None,
    type: str,
    failure: Failure,
) -> None:
    fake_openai.fail_stream(
        after_partials=1, how=how, code=code, type=type, message="Something went wrong."
    )
    partials = Partials()

    error = await _failure(provider.generate(_call(partial_images=3), partials))

    assert error.failure is failure
    assert error.message
    assert partials.indexes == [0]
    assert [r.status for r in fake_openai.requests_to("images")] == [200]
    assert waits == []


async def test_an_error_event_tells_the_providers_message(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.fail_stream(message="The image could not be finished.")

    error = await _failure(provider.generate(_call(partial_images=1), Partials()))

    assert "The image could not be finished." in error.message


async def test_a_stream_that_stalls_times_out(fake_openai: FakeOpenAI, make: Make) -> None:
    # held after one partial for longer than the provider waits for the next event
    fake_openai.hold_stream(1)
    partials = Partials()
    provider = make(image_timeout=0.3)

    error = await _failure(provider.generate(_call(partial_images=2), partials))

    assert error.failure is Failure.TIMEOUT
    assert partials.indexes == [0]
    assert len(fake_openai.requests_to("images")) == 1


@pytest.mark.parametrize(
    ("status", "code", "failure"),
    [
        (400, "moderation_blocked", Failure.REFUSED),
        (404, "model_not_found", Failure.MISCONFIGURED),
        (503, None, Failure.UNAVAILABLE),
    ],
)
async def test_an_error_before_the_stream_maps_as_without_streaming(
    fake_openai: FakeOpenAI,
    provider: OpenAIProvider,
    status: int,
    code: str | None,
    failure: Failure,
) -> None:
    fake_openai.fail("images", status=status, code=code)
    partials = Partials()

    error = await _failure(provider.generate(_call(partial_images=2), partials))

    assert (error.failure, error.status) == (failure, status)
    assert partials.got == []
    assert len(fake_openai.requests_to("images")) == 1


async def test_a_rate_limited_stream_is_retried_before_it_starts(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, waits: Waits
) -> None:
    _rate_limited(fake_openai, times=1, headers={"Retry-After": "2"})
    partials = Partials()

    result = await provider.generate(_call(partial_images=1), partials)

    assert len(result.images) == 1
    assert partials.indexes == [0]
    assert waits == [2.0]
    assert [r.status for r in fake_openai.requests_to("images")] == [429, 200]


class RecordingLender:
    """A runner's lender that notes when the slot is lent and taken back, among the waits."""

    def __init__(self, waits: Waits) -> None:
        self.steps: list[str] = []
        self._waits = waits

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[None]:
        self.steps.append(f"lent after {len(self._waits)} waits")
        yield
        self.steps.append(f"taken back after {len(self._waits)} waits")


async def test_a_rate_limit_wait_lends_the_running_slot(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, waits: Waits
) -> None:
    _rate_limited(fake_openai, times=1, headers={"Retry-After": "2"})
    lender = RecordingLender(waits)
    token = current_lender.set(lender)
    try:
        result = await provider.generate(_call(partial_images=1), Partials())
    finally:
        current_lender.reset(token)

    assert len(result.images) == 1
    # the wait, and only the wait, happened with the slot lent
    assert lender.steps == ["lent after 0 waits", "taken back after 1 waits"]
    assert waits == [2.0]


async def test_a_sink_that_raises_does_not_sink_the_call(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, caplog: pytest.LogCaptureFixture
) -> None:
    offered: list[int] = []

    async def failing(partial: Partial) -> None:
        offered.append(partial.index)
        raise RuntimeError("the preview could not be stored")

    with caplog.at_level(logging.ERROR, logger="storyframe.providers"):
        result = await provider.generate(_call(partial_images=3), failing)

    assert len(result.images) == 1
    assert offered == [0, 1, 2]
    logged = [r for r in caplog.records if r.name == "storyframe.providers"]
    assert len(logged) == 3
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in logged)


def _rewrite_events(event_type: str, change: Callable[[dict[str, Any]], None]) -> Any:
    def rewrite(endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("type") == event_type:
            change(payload)
        return payload

    return rewrite


async def test_an_undecodable_partial_is_skipped(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    def spoil_the_first(event: dict[str, Any]) -> None:
        if event["partial_image_index"] == 0:
            event["b64_json"] = "*not base64*"

    fake_openai.rewrite = _rewrite_events("image_generation.partial_image", spoil_the_first)
    partials = Partials()

    result = await provider.generate(_call(partial_images=2), partials)

    assert len(result.images) == 1
    assert partials.indexes == [1]


async def test_a_completed_event_without_a_usable_image_is_a_bad_response(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.rewrite = _rewrite_events(
        "image_generation.completed", lambda event: event.update(b64_json="%%%")
    )

    error = await _failure(provider.generate(_call(partial_images=1), Partials()))

    assert error.failure is Failure.BAD_RESPONSE
    # the image was made, so billed: its usage comes with the error
    assert error.usage == Usage(
        input_text_tokens=len(PROMPT) // 4,
        output_tokens=IMAGE_OUTPUT_TOKENS + PARTIAL_OUTPUT_TOKENS,
    )


# Rate limits --------------------------------------------------------------------------------


def _rate_limited(fake: FakeOpenAI, times: int, headers: dict[str, str] | None = None) -> None:
    fake.fail(
        "images",
        status=429,
        code="rate_limit_exceeded",
        type="requests",
        message="Rate limit reached for images per minute.",
        headers=headers,
        times=times,
    )


async def test_a_rate_limited_call_is_retried_after_the_wait_asked(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, waits: Waits
) -> None:
    _rate_limited(fake_openai, times=2, headers={"Retry-After": "3"})

    result = await provider.generate(_call(count=2))

    assert len(result.images) == 2
    assert waits == [3.0, 3.0]
    assert [r.status for r in fake_openai.requests_to("images")] == [429, 429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in fake_openai.requests_to("images")] == [
        "0",
        "0",
        "0",
    ]


async def test_retry_after_ms_wins_over_retry_after(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, waits: Waits
) -> None:
    _rate_limited(fake_openai, times=1, headers={"retry-after-ms": "1500", "Retry-After": "2"})

    await provider.generate(_call())

    assert waits == [1.5]


async def test_retry_after_may_be_an_http_date(
    fake_openai: FakeOpenAI, make: Make, waits: Waits
) -> None:
    # a minute ahead, so that a slow machine still asks well over half of it
    provider = make(max_retry_wait=120)
    when = datetime.now(UTC) + timedelta(seconds=60)
    _rate_limited(fake_openai, times=1, headers={"Retry-After": email.utils.format_datetime(when)})

    await provider.generate(_call())

    (wait,) = waits
    assert 30 < wait <= 60


async def test_without_retry_after_the_waits_grow(
    fake_openai: FakeOpenAI, make: Make, waits: Waits
) -> None:
    _rate_limited(fake_openai, times=3)
    provider = make(rate_limit_retries=3)

    await provider.generate(_call())

    assert waits == [1.0, 2.0, 4.0]


async def test_a_call_still_rate_limited_after_the_retries_fails(
    fake_openai: FakeOpenAI, make: Make, waits: Waits
) -> None:
    _rate_limited(fake_openai, times=10, headers={"Retry-After": "0"})
    provider = make(rate_limit_retries=2)

    error = await _failure(provider.generate(_call()))

    assert (error.failure, error.status) == (Failure.RATE_LIMITED, 429)
    assert len(fake_openai.requests_to("images")) == 1 + 2
    assert waits == [0.0, 0.0]


async def test_no_quota_is_misconfigured_and_not_retried(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, waits: Waits
) -> None:
    fake_openai.fail(
        "images",
        status=429,
        code="insufficient_quota",
        type="insufficient_quota",
        message="You exceeded your current quota, please check your plan and billing details.",
        times=3,
    )

    error = await _failure(provider.generate(_call()))

    assert (error.failure, error.status) == (Failure.MISCONFIGURED, 429)
    assert "quota" in error.message
    assert len(fake_openai.requests_to("images")) == 1
    assert waits == []


async def test_a_wait_longer_than_allowed_is_not_waited_for(
    fake_openai: FakeOpenAI, make: Make, waits: Waits
) -> None:
    _rate_limited(fake_openai, times=1, headers={"Retry-After": "60"})
    provider = make(max_retry_wait=20)

    error = await _failure(provider.generate(_call()))

    assert (error.failure, error.status) == (Failure.RATE_LIMITED, 429)
    assert "60 s" in error.message
    assert len(fake_openai.requests_to("images")) == 1
    assert waits == []


async def test_no_retries_allowed_fails_at_the_first_429(
    fake_openai: FakeOpenAI, make: Make, waits: Waits
) -> None:
    _rate_limited(fake_openai, times=1, headers={"Retry-After": "1"})
    provider = make(rate_limit_retries=0)

    error = await _failure(provider.generate(_call()))

    assert error.failure is Failure.RATE_LIMITED
    assert len(fake_openai.requests_to("images")) == 1
    assert waits == []


# Descriptions -------------------------------------------------------------------------------


async def test_describe_sends_the_images_as_data_urls(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    references = [_reference(0), _reference(1)]
    instruction = "Describe the people in these images."

    description = await provider.analyze(references, instruction, "gpt-5.4-mini")

    assert description.text.startswith("A description of 2 reference images: ")
    assert description.model == "gpt-5.4-mini-2026-01-01"
    assert description.usage == Usage(
        input_text_tokens=len(instruction) // 4 + 2 * CHAT_IMAGE_TOKENS,
        output_tokens=len(description.text) // 4,
    )
    (request,) = fake_openai.requests_to("chat")
    assert request.json is not None
    assert request.json["model"] == "gpt-5.4-mini"
    (message,) = request.json["messages"]
    assert message["role"] == "user"
    assert message["content"][0] == {"type": "text", "text": instruction}
    urls = image_urls(request)
    assert [url.partition(",")[0] for url in urls] == ["data:image/png;base64"] * 2
    assert [base64.b64decode(url.partition(",")[2]) for url in urls] == [
        ref.data for ref in references
    ]


async def test_references_are_described_with_the_servers_instruction(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    description = await provider.describe_references([_reference(0)], "gpt-5.4-mini")

    assert description.text.startswith("A description of 1 reference image")
    (request,) = fake_openai.requests_to("chat")
    assert request.json is not None
    (message,) = request.json["messages"]
    assert message["content"][0] == {"type": "text", "text": DESCRIBE_REFERENCES}
    assert len(image_urls(request)) == 1


async def test_an_empty_description_is_a_bad_response(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.chat_answer = "  "

    error = await _failure(provider.analyze([_reference(0)], "Describe.", "gpt-5.4-mini"))

    assert error.failure is Failure.BAD_RESPONSE


@pytest.mark.parametrize(
    ("status", "code", "failure"),
    [
        (400, "content_policy_violation", Failure.REFUSED),
        (400, "invalid_image_format", Failure.BAD_RESPONSE),
        (401, "invalid_api_key", Failure.MISCONFIGURED),
        (404, "model_not_found", Failure.MISCONFIGURED),
    ],
)
async def test_errors_of_describe_map_the_same_way(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, status: int, code: str, failure: Failure
) -> None:
    fake_openai.fail("chat", status=status, code=code)

    error = await _failure(provider.analyze([_reference(0)], "Describe.", "gpt-5.4-mini"))

    assert (error.failure, error.status) == (failure, status)


# Models -------------------------------------------------------------------------------------


async def test_models_come_with_their_shutdown_dates(
    fake_openai: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake_openai.models = {
        "gpt-image-2.6-flare": None,
        "gpt-image-1.5": "2026-12-01",
        "gpt-image-odd": "next spring",
        "gpt-image-plain": None,
    }

    def drop_shutdown_date(endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        for model in payload.get("data", []):
            if model["id"] == "gpt-image-plain":
                del model["shutdown_date"]
        return payload

    fake_openai.rewrite = drop_shutdown_date

    models = await provider.models()

    assert models == [
        RemoteModel("gpt-image-2.6-flare", None),
        RemoteModel("gpt-image-1.5", date(2026, 12, 1)),
        RemoteModel("gpt-image-odd", None),
        RemoteModel("gpt-image-plain", None),
    ]
    (request,) = fake_openai.requests_to("models")
    assert request.path == "/v1/models"


async def test_models_errors_map_the_same_way(make: Make) -> None:
    provider = make(api_key="sk-not-the-key")

    error = await _failure(provider.models())

    assert (error.failure, error.status) == (Failure.MISCONFIGURED, 401)


# Building and closing -----------------------------------------------------------------------


async def test_without_a_base_url_the_sdk_reads_openai_base_url(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    provider = build_openai_provider(
        api_key=fake_openai.api_key,
        base_url=None,
        image_timeout=10,
        rate_limit_retries=0,
        max_retry_wait=0,
    )
    try:
        result = await provider.generate(_call())
    finally:
        await provider.aclose()

    assert len(result.images) == 1
    assert len(fake_openai.requests_to("generations")) == 1


async def test_aclose_closes_both_clients(fake_openai: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(api_key=fake_openai.api_key, base_url=fake_openai.base_url)
    downloads = httpx2.AsyncClient()
    provider = OpenAIProvider(
        client, downloads, image_timeout=10, rate_limit_retries=0, max_retry_wait=0
    )
    await provider.generate(_call())

    await provider.aclose()

    assert client.is_closed()
    assert downloads.is_closed
