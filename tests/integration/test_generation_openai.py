"""Generating images through OpenAI: the real SDK against a fake OpenAI server on loopback.

Each test asserts what the server was sent (model, `n`, size, prompt, references, streaming)
and what the user got back (stored images, `finalPrompt`, status, usage and cost), on both
databases. By default each image is a call of its own, streamed with two partial images; the
tests about batching several images into one call with `n` turn that on
(`generation_images_per_call=4`)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from datetime import date
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image as PILImage
from sqlalchemy import select
from sqlmodel import col

from storyframe.db.tables import Image
from storyframe.domain.jobs import EventKind, GenerationEvent, Subscription
from tests.support.fake_openai import (
    IMAGE_INPUT_TOKENS,
    IMAGE_OUTPUT_TOKENS,
    PARTIAL_OUTPUT_TOKENS,
    FakeOpenAI,
    StreamBreak,
    fake_openai_fixture,  # noqa: F401
    image_urls,
)
from tests.support.generating import (
    OpenAIStack,
    chat_messages,
    generate,
    generate_ok,
    openai_stack_fixture,  # noqa: F401
    set_context,
    start_fixture,  # noqa: F401
)
from tests.support.ids import pk_of
from tests.support.polling import until
from tests.support.scenes import create_frame, seed_video

CONTEXT_TEXT = "A lighthouse keeper and her grey cat, in watercolour."
DEFAULT_MODEL = "gpt-image-2.6-flare"
# gpt-image-2.6 list prices, US dollars per million tokens: text in, image in, image out.
TEXT_IN, IMAGE_IN, IMAGE_OUT = 5.0, 8.0, 30.0
PARTIALS = 2
"""Partial images each one-image call streams by default (`openai_partial_images`)."""
STREAMED_OUTPUT_TOKENS = IMAGE_OUTPUT_TOKENS + PARTIALS * PARTIAL_OUTPUT_TOKENS
"""Output tokens a streamed call of one image is billed: the image's and its partials'."""
EVENT_SECONDS = 30.0
"""The longest a test waits for an event it expects: reached only when something is wrong."""


def _text_tokens(prompt: str) -> int:
    return max(1, len(prompt) // 4)


async def _take(
    events: Subscription, enough: Callable[[list[GenerationEvent]], bool]
) -> list[GenerationEvent]:
    """Events of the subscription, in the order published, until `enough` holds of those taken
    (at once if it already holds)."""
    taken: list[GenerationEvent] = []
    async with asyncio.timeout(EVENT_SECONDS):
        while not enough(taken):
            event = await anext(events)
            assert isinstance(event, GenerationEvent)
            taken.append(event)
    return taken


def _finished(taken: list[GenerationEvent]) -> bool:
    return bool(taken) and taken[-1].kind is EventKind.FINISHED


def _indexes(taken: list[GenerationEvent], kind: EventKind) -> list[int]:
    """The image positions the events of that kind are about, in the order published."""
    indexes = [event.index for event in taken if event.kind is kind]
    assert None not in indexes, taken
    return [index for index in indexes if index is not None]


async def _slots(stack: OpenAIStack, message_id: str) -> dict[int, int | None]:
    """The slot of each image the message's generation made, by image id, read straight from
    the database."""
    statement = select(Image).where(col(Image.message_id) == pk_of(message_id))
    async with stack.runtime.sessions() as session:
        return {image.id: image.slot for image in await session.scalars(statement) if image.id}


async def _slots_taken(stack: OpenAIStack, message_id: str) -> list[int | None]:
    """The slots of the message's images, in the order of their positions (None, for an image
    recorded without one, first)."""
    slots = (await _slots(stack, message_id)).values()
    return sorted(slots, key=lambda slot: -1 if slot is None else slot)


async def test_four_images_are_one_call_with_n_and_are_stored(
    start: Callable[..., Any],
) -> None:
    # given images batched four to a call
    stack: OpenAIStack = await start(generation_images_per_call=4)
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Opening shot")
    prompt = "a red fox at dawn, wide shot"

    # when
    payload = await generate_ok(stack.gql, "Frame", frame, prompt, imageCount=4)

    # then the server was asked once, for four images
    (sent,) = stack.fake.requests_to("images")
    assert sent.endpoint == "generations"
    assert sent.params == {
        "model": DEFAULT_MODEL,
        "prompt": prompt,
        "n": 4,
        "size": "1024x1024",
        "quality": "medium",
    }
    assert sent.authorization == f"Bearer {stack.fake.api_key}"
    # and the user got four stored images, with usage and cost
    message, generation = payload["message"], payload["generation"]
    assert message["finalPrompt"] == prompt
    assert generation["status"] == "SUCCEEDED"
    assert (generation["requestedCount"], generation["completedCount"]) == (4, 4)
    assert generation["provider"] == "openai"
    assert generation["placeholder"] is False
    assert generation["model"] == DEFAULT_MODEL
    assert (generation["size"], generation["quality"]) == ("1024x1024", "medium")
    text = _text_tokens(prompt)
    assert generation["usage"] == {
        "inputTextTokens": text,
        "inputImageTokens": 0,
        "outputTokens": 4 * IMAGE_OUTPUT_TOKENS,
        "totalTokens": text + 4 * IMAGE_OUTPUT_TOKENS,
    }
    expected_cost = (text * TEXT_IN + 4 * IMAGE_OUTPUT_TOKENS * IMAGE_OUT) / 1_000_000
    assert generation["estimatedCostUsd"] == pytest.approx(expected_cost)
    images = message["images"]
    assert len(images) == 4
    assert not any(image["placeholder"] for image in images)
    assert [(i["width"], i["height"], i["contentType"]) for i in images] == [
        (64, 64, "image/png")
    ] * 4
    assert len(stack.media()) == 4
    for image in images:
        response = await stack.http.get(urlsplit(image["url"]).path)
        assert response.status_code == 200
        assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    # and each image of the call is recorded in its own slot
    assert await _slots_taken(stack, message["id"]) == [0, 1, 2, 3]


async def test_by_default_each_image_is_a_streamed_call_of_its_own(stack: OpenAIStack) -> None:
    # given
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Opening shot")
    prompt = "a red fox at dawn, wide shot"

    # when
    payload = await generate_ok(stack.gql, "Frame", frame, prompt, imageCount=4)

    # then the server was asked four times, for one image each, streamed with two partials
    sent = stack.fake.requests_to("images")
    assert [request.endpoint for request in sent] == ["generations"] * 4
    assert [request.params for request in sent] == [
        {
            "model": DEFAULT_MODEL,
            "prompt": prompt,
            "n": 1,
            "size": "1024x1024",
            "quality": "medium",
            "stream": True,
            "partial_images": PARTIALS,
        }
    ] * 4
    assert [request.status for request in sent] == [200] * 4
    # and the user got four stored images, each call's usage (its partials' too) and cost added
    message, generation = payload["message"], payload["generation"]
    assert message["finalPrompt"] == prompt
    assert generation["status"] == "SUCCEEDED"
    assert (generation["requestedCount"], generation["completedCount"]) == (4, 4)
    text = _text_tokens(prompt)
    assert generation["usage"] == {
        "inputTextTokens": 4 * text,
        "inputImageTokens": 0,
        "outputTokens": 4 * STREAMED_OUTPUT_TOKENS,
        "totalTokens": 4 * (text + STREAMED_OUTPUT_TOKENS),
    }
    expected_cost = 4 * (text * TEXT_IN + STREAMED_OUTPUT_TOKENS * IMAGE_OUT) / 1_000_000
    assert generation["estimatedCostUsd"] == pytest.approx(expected_cost)
    images = message["images"]
    assert [(i["width"], i["height"], i["contentType"]) for i in images] == [
        (64, 64, "image/png")
    ] * 4
    assert not any(image["placeholder"] for image in images)
    assert len(stack.media()) == 4
    assert await _slots_taken(stack, message["id"]) == [0, 1, 2, 3]


async def test_url_answers_are_downloaded_at_once(start: Callable[..., Any]) -> None:
    # given calls answered with URLs (only calls that do not stream are)
    stack: OpenAIStack = await start(openai_partial_images=0)
    stack.fake.url_mode = True
    video = await seed_video(stack.gql)

    # when
    payload = await generate_ok(stack.gql, "MainChat", video.main_chat_id, "a map", imageCount=2)

    # then
    calls = stack.fake.requests_to("images")
    assert [(call.params["n"], "stream" in call.params) for call in calls] == [(1, False)] * 2
    downloads = stack.fake.requests_to("files")
    assert len(downloads) == 2
    images = payload["message"]["images"]
    assert len(images) == 2
    assert all(urlsplit(image["url"]).path.startswith("/media/") for image in images)
    served = {(await stack.http.get(urlsplit(image["url"]).path)).content for image in images}
    assert served == set(stack.fake.files.values())


async def test_the_context_text_reaches_the_model_only_when_it_should(
    stack: OpenAIStack,
) -> None:
    # given
    video = await seed_video(stack.gql)
    await set_context(stack.gql, video.context_id, CONTEXT_TEXT)
    frame = await create_frame(stack.gql, video.id, "Shot")
    with_context = f"the stairs\n\nContext of the story: {CONTEXT_TEXT}"

    # when
    await generate_ok(stack.gql, "Frame", frame, "the stairs")
    await generate_ok(stack.gql, "Frame", frame, "the stairs", withContext=True)
    await generate_ok(stack.gql, "Context", video.context_id, "the stairs")
    await generate_ok(stack.gql, "MainChat", video.main_chat_id, "the stairs")

    # then
    prompts = [request.params["prompt"] for request in stack.fake.requests_to("images")]
    assert prompts == ["the stairs", with_context, with_context, with_context]


async def test_references_are_described_and_passed_to_the_edit_endpoint(
    stack: OpenAIStack,
) -> None:
    # given
    video = await seed_video(stack.gql)
    made = await generate_ok(stack.gql, "Context", video.context_id, "the keeper", imageCount=2)
    references = made["message"]["images"]
    reference_bytes = [
        (await stack.http.get(urlsplit(image["url"]).path)).content for image in references
    ]
    frame = await create_frame(stack.gql, video.id, "Shot")
    stack.fake.requests.clear()

    # when
    payload = await generate_ok(
        stack.gql,
        "Frame",
        frame,
        "the keeper at the window",
        imageCount=2,
        contextImageIds=[image["id"] for image in references],
    )

    # then the vision model saw both references as data URLs
    (vision,) = stack.fake.requests_to("chat")
    assert vision.params["model"] == "gpt-5.4-mini"
    urls = image_urls(vision)
    assert [base64.b64decode(url.split(",", 1)[1]) for url in urls] == reference_bytes
    assert all(url.startswith("data:image/png;base64,") for url in urls)
    # and the image model got, in each image's streamed call, the references themselves and the
    # described prompt
    edits = stack.fake.requests_to("images")
    assert len(edits) == 2
    message, generation = payload["message"], payload["generation"]
    for edit in edits:
        assert edit.endpoint == "edits"
        assert [part.data for part in edit.files] == reference_bytes
        assert (edit.params["n"], edit.params["stream"]) == ("1", "true")
        assert edit.params["partial_images"] == str(PARTIALS)
        assert edit.params["model"] == DEFAULT_MODEL
        assert edit.params["prompt"] == message["finalPrompt"]
    prompt, description = message["finalPrompt"].split("\n\nReference images: ")
    assert prompt == "the keeper at the window"
    assert "2 reference images" in description
    assert message["attachedImages"] == [{"id": image["id"]} for image in references]
    assert generation["visionModel"].startswith("gpt-5.4-mini")  # the snapshot that answered
    # each call was billed for both references
    assert generation["usage"]["inputImageTokens"] == 2 * 2 * IMAGE_INPUT_TOKENS
    assert generation["status"] == "SUCCEEDED"


async def test_a_failed_description_still_generates_and_is_reported(stack: OpenAIStack) -> None:
    # given
    video = await seed_video(stack.gql)
    made = await generate_ok(stack.gql, "Context", video.context_id, "the keeper")
    reference = made["message"]["images"][0]["id"]
    stack.fake.fail("chat", status=500, times=3)

    # when
    payload = await generate_ok(
        stack.gql, "MainChat", video.main_chat_id, "the keeper", contextImageIds=[reference]
    )

    # then
    generation = payload["generation"]
    assert generation["status"] == "SUCCEEDED"
    assert [(e["index"], e["code"]) for e in generation["errors"]] == [
        (None, "PROVIDER_UNAVAILABLE")
    ]
    assert payload["message"]["finalPrompt"] == "the keeper"
    assert stack.fake.requests_to("images")[-1].endpoint == "edits"
    # a text call is cheap and billed by the token: the SDK retried it twice
    assert [r.status for r in stack.fake.requests_to("chat")] == [500, 500, 500]


async def test_fewer_images_than_asked_is_a_partial_result(start: Callable[..., Any]) -> None:
    # given one call for the four images, answered with one image fewer
    stack: OpenAIStack = await start(generation_images_per_call=4)
    stack.fake.short_by = 1
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Shot")

    # when
    payload = await generate_ok(stack.gql, "Frame", frame, "four owls", imageCount=4)

    # then
    generation = payload["generation"]
    assert generation["status"] == "PARTIAL"
    assert (generation["completedCount"], generation["failedCount"]) == (3, 1)
    assert [(e["index"], e["code"]) for e in generation["errors"]] == [(3, "PROVIDER_ERROR")]
    assert len(payload["message"]["images"]) == 3
    assert len(stack.media()) == 3
    (call,) = stack.fake.requests_to("images")
    assert call.params["n"] == 4


async def test_a_model_without_n_gets_concurrent_calls_and_keeps_partial_results(
    start: Callable[..., Any],
) -> None:
    # given a model the catalog does not know: one image per call, though calls may batch four
    stack: OpenAIStack = await start(
        openai_image_model="compatible-image-model", generation_images_per_call=4
    )
    stack.fake.gather = 4  # answered only once all four are in flight, if they ever are
    stack.fake.fail("generations", status=500, on_call=2)
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Shot")

    # when
    payload = await generate_ok(stack.gql, "Frame", frame, "four owls", imageCount=4)

    # then four calls of one image ran together, and the failed one was not retried
    calls = stack.fake.requests_to("generations")
    assert len(calls) == 4
    assert {call.params["n"] for call in calls} == {1}
    assert stack.fake.max_in_flight == 4
    generation = payload["generation"]
    assert generation["status"] == "PARTIAL"
    assert generation["completedCount"] == 3
    assert [e["code"] for e in generation["errors"]] == ["PROVIDER_UNAVAILABLE"]
    assert generation["estimatedCostUsd"] is None
    assert len(payload["message"]["images"]) == 3


async def test_concurrent_calls_stay_under_the_configured_bound(
    start: Callable[..., Any],
) -> None:
    # given
    stack: OpenAIStack = await start(
        openai_image_model="compatible-image-model", generation_concurrency=2
    )
    stack.fake.gather = 2  # the first two are answered once both are in flight
    stack.fake.latency = 0.2  # long enough for more to join them, were the bound not kept
    video = await seed_video(stack.gql)

    # when
    payload = await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=4)

    # then
    assert len(stack.fake.requests_to("generations")) == 4
    assert stack.fake.max_in_flight == 2
    assert payload["generation"]["completedCount"] == 4


FAILURES = [
    pytest.param(
        {"status": 400, "code": "moderation_blocked", "type": "image_generation_user_error"},
        "CONTENT_REFUSED",
        1,
        id="moderation-blocked",
    ),
    pytest.param(
        {"status": 400, "code": "content_policy_violation"},
        "CONTENT_REFUSED",
        1,
        id="content-policy-violation",
    ),
    pytest.param(
        {"status": 429, "code": "rate_limit_exceeded", "headers": {"Retry-After": "0"}, "times": 9},
        "RATE_LIMITED",
        3,
        id="rate-limited-after-two-retries",
    ),
    pytest.param(
        {"status": 429, "code": "insufficient_quota", "times": 9},
        "PROVIDER_MISCONFIGURED",
        1,
        id="no-quota",
    ),
    pytest.param({"status": 401, "code": "invalid_api_key"}, "PROVIDER_MISCONFIGURED", 1, id="401"),
    pytest.param({"status": 403}, "PROVIDER_MISCONFIGURED", 1, id="403"),
    pytest.param(
        {"status": 404, "code": "model_not_found"}, "PROVIDER_MISCONFIGURED", 1, id="unknown-model"
    ),
    pytest.param({"status": 500}, "PROVIDER_UNAVAILABLE", 1, id="500"),
    pytest.param({"status": 503}, "PROVIDER_UNAVAILABLE", 1, id="503"),
]


@pytest.mark.parametrize(("failure", "code", "calls"), FAILURES)
async def test_a_failed_generation_keeps_the_message_and_says_why(
    stack: OpenAIStack, failure: dict[str, Any], code: str, calls: int
) -> None:
    # given both images' calls fail (`calls` is how often each is made)
    video = await seed_video(stack.gql)
    frame = await create_frame(stack.gql, video.id, "Shot")
    stack.fake.fail("images", **{"times": 2, **failure})

    # when
    payload = await generate(stack.gql, "Frame", frame, "a forbidden thing", imageCount=2)

    # then the user is told why
    (error,) = payload["userErrors"]
    assert error["code"] == code
    assert error["message"]
    assert error["field"] == (["prompt"] if code == "CONTENT_REFUSED" else None)
    # and the prompt stays in the chat with its failed generation
    generation = payload["generation"]
    assert generation["status"] == "FAILED"
    assert (generation["completedCount"], generation["failedCount"]) == (0, 2)
    assert [(e["index"], e["code"]) for e in generation["errors"]] == [(0, code), (1, code)]
    assert generation["finishedAt"] is not None
    (message,) = await chat_messages(stack.gql, frame)
    assert message["prompt"] == "a forbidden thing"
    assert message["finalPrompt"] == "a forbidden thing"
    assert message["images"] == []
    assert message["generation"]["status"] == "FAILED"
    assert message == payload["message"]
    # each image's call was made as often as allowed, and nothing was stored
    assert len(stack.fake.requests_to("images")) == 2 * calls
    assert stack.media() == []


async def test_an_answer_without_a_usable_image_still_counts_what_it_cost(
    stack: OpenAIStack,
) -> None:
    # given answers whose images (and partial images) cannot be decoded
    def undecodable(endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        if "b64_json" in payload:  # an event of a stream
            payload["b64_json"] = "*not base64*"
        for item in payload.get("data", []):
            item["b64_json"] = "*not base64*"
        return payload

    stack.fake.rewrite = undecodable
    video = await seed_video(stack.gql)

    # when
    payload = await generate(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2)

    # then nothing was made, but what OpenAI billed for both calls is recorded
    assert [e["code"] for e in payload["userErrors"]] == ["PROVIDER_ERROR"]
    generation = payload["generation"]
    assert generation["status"] == "FAILED"
    assert [(e["index"], e["code"]) for e in generation["errors"]] == [
        (0, "PROVIDER_ERROR"),
        (1, "PROVIDER_ERROR"),
    ]
    text = _text_tokens("owls")
    assert generation["usage"] == {
        "inputTextTokens": 2 * text,
        "inputImageTokens": 0,
        "outputTokens": 2 * STREAMED_OUTPUT_TOKENS,
        "totalTokens": 2 * (text + STREAMED_OUTPUT_TOKENS),
    }
    assert generation["estimatedCostUsd"] == pytest.approx(
        2 * (text * TEXT_IN + STREAMED_OUTPUT_TOKENS * IMAGE_OUT) / 1e6, abs=1e-6
    )
    assert stack.media() == []


async def test_a_rate_limit_is_retried_after_the_wait_asked(stack: OpenAIStack) -> None:
    # given the first image call refused with a 429
    video = await seed_video(stack.gql)
    stack.fake.fail("images", status=429, headers={"Retry-After": "0"}, on_call=1)

    # when
    payload = await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2)

    # then it was made again, and both images were made
    assert [r.status for r in stack.fake.requests_to("images")] == [429, 200, 200]
    assert payload["generation"]["status"] == "SUCCEEDED"
    assert payload["generation"]["completedCount"] == 2


async def test_a_slow_provider_times_out(start: Callable[..., Any]) -> None:
    # given
    stack: OpenAIStack = await start(openai_timeout_seconds=0.3)
    stack.fake.latency = 1.0
    video = await seed_video(stack.gql)

    # when
    payload = await generate(stack.gql, "MainChat", video.main_chat_id, "owls")

    # then
    assert [e["code"] for e in payload["userErrors"]] == ["PROVIDER_TIMEOUT"]
    assert payload["generation"]["status"] == "FAILED"
    assert len(stack.fake.requests_to("images")) == 1


async def test_a_chosen_model_size_and_quality_are_sent(stack: OpenAIStack) -> None:
    # given
    video = await seed_video(stack.gql)

    # when
    payload = await generate_ok(
        stack.gql,
        "MainChat",
        video.main_chat_id,
        "owls",
        model="gpt-image-2.6-sunburst",
        size="1536x1024",
        quality="high",
    )

    # then
    (sent,) = stack.fake.requests_to("images")
    assert (sent.params["model"], sent.params["size"], sent.params["quality"]) == (
        "gpt-image-2.6-sunburst",
        "1536x1024",
        "high",
    )
    generation = payload["generation"]
    assert (generation["model"], generation["size"], generation["quality"]) == (
        "gpt-image-2.6-sunburst",
        "1536x1024",
        "high",
    )


async def test_the_sdk_reads_openai_base_url_from_the_environment(
    start: Callable[..., Any], fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    stack: OpenAIStack = await start(openai_base_url=None)
    video = await seed_video(stack.gql)

    # when
    await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls")

    # then
    assert len(fake_openai.requests_to("generations")) == 1


async def test_analyze_images_asks_the_vision_model(stack: OpenAIStack) -> None:
    # given
    video = await seed_video(stack.gql)
    made = await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2)
    image_ids = [image["id"] for image in made["message"]["images"]]
    stack.fake.chat_answer = "Two owls on a branch."

    # when
    data = await stack.gql.data(
        """
        mutation($input: AnalyzeImagesInput!) {
          analyzeImages(input: $input) {
            analysis { text model placeholder usage { inputTokens outputTokens } estimatedCostUsd }
            userErrors { code }
          }
        }
        """,
        {"input": {"imageIds": image_ids, "question": "What birds are these?"}},
    )

    # then
    (sent,) = stack.fake.requests_to("chat")
    assert len(image_urls(sent)) == 2
    assert "What birds are these?" in str(sent.params["messages"])
    analysis = data["analyzeImages"]["analysis"]
    assert analysis["text"] == "Two owls on a branch."
    assert analysis["placeholder"] is False
    assert analysis["usage"]["inputTokens"] > 0
    assert analysis["estimatedCostUsd"] > 0


async def test_analyze_images_reports_a_refusal(stack: OpenAIStack) -> None:
    # given
    video = await seed_video(stack.gql)
    made = await generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls")
    stack.fake.fail("chat", status=400, code="content_policy_violation")

    # when
    data = await stack.gql.data(
        """
        mutation($input: AnalyzeImagesInput!) {
          analyzeImages(input: $input) { analysis { text } userErrors { code } }
        }
        """,
        {"input": {"imageIds": [made["message"]["images"][0]["id"]], "question": "what?"}},
    )

    # then
    assert data["analyzeImages"] == {"analysis": None, "userErrors": [{"code": "CONTENT_REFUSED"}]}


IMAGE_MODELS = """
query {
  imageModels {
    name isDefault placeholder maxImagesPerCall maxReferenceImages sizes qualities
    pricePerImageUsd shutdownDate
  }
}
"""


async def test_image_models_lists_the_default_first_and_live_models(stack: OpenAIStack) -> None:
    # given the day before gpt-image-1.5 retires
    stack.clock.set_day(date(2026, 11, 30))

    # when
    data = await stack.gql.data(IMAGE_MODELS)

    # then
    models = {model["name"]: model for model in data["imageModels"]}
    assert data["imageModels"][0]["name"] == DEFAULT_MODEL
    assert [m["name"] for m in data["imageModels"] if m["isDefault"]] == [DEFAULT_MODEL]
    default = models[DEFAULT_MODEL]
    assert default["maxImagesPerCall"] == 10
    assert default["maxReferenceImages"] == 16
    assert "1024x1024" in default["sizes"]
    assert "medium" in default["qualities"]
    assert default["pricePerImageUsd"] == pytest.approx(IMAGE_OUTPUT_TOKENS * IMAGE_OUT / 1e6)
    assert models["gpt-image-1.5"]["shutdownDate"] == "2026-12-01"
    assert not {"dall-e-2", "dall-e-3", "gpt-image-1"} & set(models)
    assert not any(model["placeholder"] for model in models.values())


async def test_a_model_is_neither_listed_nor_used_from_its_shutdown_date(
    stack: OpenAIStack,
) -> None:
    # given the day gpt-image-1.5 retires
    stack.clock.set_day(date(2026, 12, 1))
    video = await seed_video(stack.gql)

    # when
    data = await stack.gql.data(IMAGE_MODELS)
    payload = await generate(
        stack.gql, "MainChat", video.main_chat_id, "owls", model="gpt-image-1.5"
    )

    # then
    assert "gpt-image-1.5" not in {model["name"] for model in data["imageModels"]}
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["model"], "INVALID")]
    assert stack.fake.requests_to("images") == []


OPENAI_STATUS = """
query {
  openAIStatus {
    configured provider error { code }
    imageModel { name available shutdownDate warning }
    visionModel { name available shutdownDate warning }
  }
}
"""


async def test_openai_status_reads_the_models_endpoint(start: Callable[..., Any]) -> None:
    # given
    # given a vision model that retires in 16 days
    stack: OpenAIStack = await start(openai_vision_model="gpt-5-mini")
    stack.clock.set_day(date(2026, 11, 25))
    stack.fake.models = {DEFAULT_MODEL: None, "gpt-5-mini": "2026-12-11"}

    # when
    data = await stack.gql.data(OPENAI_STATUS)

    # then
    assert data["openAIStatus"] == {
        "configured": True,
        "provider": "openai",
        "error": None,
        "imageModel": {
            "name": DEFAULT_MODEL,
            "available": True,
            "shutdownDate": None,
            "warning": None,
        },
        "visionModel": {
            "name": "gpt-5-mini",
            "available": True,
            "shutdownDate": "2026-12-11",
            "warning": "retires on 2026-12-11; choose another model",
        },
    }
    assert stack.fake.requests_to("models")


async def test_openai_status_asks_for_the_models_at_most_every_five_minutes(
    stack: OpenAIStack,
) -> None:
    # when
    first = await stack.gql.data(OPENAI_STATUS)
    stack.fake.models = {}
    second = await stack.gql.data(OPENAI_STATUS)

    # then
    assert len(stack.fake.requests_to("models")) == 1
    assert second == first
    assert first["openAIStatus"]["imageModel"]["available"] is True


async def test_openai_status_reports_a_missing_model_and_an_unreachable_provider(
    start: Callable[..., Any],
) -> None:
    # given
    stack: OpenAIStack = await start(openai_image_model="gpt-image-9")
    stack.fake.models = {"gpt-5.4-mini": None}

    # when
    stack.fake.fail("models", status=401, code="invalid_api_key")
    refused = await stack.gql.data(OPENAI_STATUS)
    listed = await stack.gql.data(OPENAI_STATUS)  # a failure is not remembered

    # then
    image_model = listed["openAIStatus"]["imageModel"]
    assert (image_model["available"], image_model["warning"]) == (
        False,
        "the provider does not offer this model",
    )
    assert refused["openAIStatus"]["error"] == {"code": "PROVIDER_MISCONFIGURED"}
    assert refused["openAIStatus"]["imageModel"]["available"] is None


async def test_a_failed_generation_logs_its_error_codes(
    stack: OpenAIStack, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    video = await seed_video(stack.gql)
    stack.fake.fail("images", status=503, times=3)  # each image's call

    # when
    with caplog.at_level(logging.INFO, logger="storyframe.generation"):
        await generate(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=3)

    # then
    (record,) = [r for r in caplog.records if r.name == "storyframe.generation"]
    fields = vars(record)
    assert fields["status"] == "FAILED"
    assert fields["provider"] == "openai"
    assert fields["model"] == DEFAULT_MODEL
    assert (fields["requested"], fields["completed"], fields["failed"]) == (3, 0, 3)
    assert fields["error_codes"] == ["PROVIDER_UNAVAILABLE"]


async def test_a_generation_waiting_on_the_provider_holds_no_read_connection(
    stack: OpenAIStack,
) -> None:
    # given: a generation whose image call the fake OpenAI holds
    video = await seed_video(stack.gql)
    pool = stack.runtime.reads.sync_engine.pool
    stack.fake.pause()
    generating = asyncio.create_task(
        generate(stack.gql, "MainChat", video.main_chat_id, "a lighthouse at dusk")
    )
    await until(lambda: stack.fake.requests_to("images"))

    # when: the request waits for the provider
    waiting = pool.checkedout()  # type: ignore[attr-defined]
    stack.fake.resume()
    payload = await generating

    # then: its token lookup's connection went back before the mutation's own work
    assert waiting == 0
    assert payload["userErrors"] == []
    assert payload["generation"]["status"] == "SUCCEEDED"


async def test_previews_arrive_while_each_image_renders_and_before_it_is_stored(
    stack: OpenAIStack,
) -> None:
    # given image calls whose streams stop once they have sent their partial images
    video = await seed_video(stack.gql)
    hold = stack.fake.hold_stream(PARTIALS)
    async with stack.runtime.events.subscribe(lambda event: True) as events:
        payload = await generate_ok(
            stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=2, wait=False
        )
        assert payload["generation"]["status"] == "QUEUED"

        # when both images have sent their previews, and neither is finished
        rendering = await _take(
            events, lambda taken: len(_indexes(taken, EventKind.PREVIEW)) == 2 * PARTIALS
        )
        (message,) = await chat_messages(stack.gql, video.main_chat_id)
        hold.release()
        rest = await _take(events, _finished)

    # then each preview came as it rendered, before any image was stored or shown
    generation_id = pk_of(payload["generation"]["id"])
    assert {event.generation_id for event in rendering + rest} == {generation_id}
    assert [event.kind for event in rendering] == [
        EventKind.QUEUED,
        EventKind.STARTED,
        *[EventKind.PREVIEW] * 2 * PARTIALS,
    ]
    assert (message["generation"]["status"], message["images"]) == ("RUNNING", [])
    for index in (0, 1):
        previews = [e.preview for e in rendering if e.index == index and e.preview is not None]
        assert [preview.sequence for preview in previews] == list(range(PARTIALS))
        for preview in previews:
            assert preview.content_type == "image/jpeg"
            with PILImage.open(BytesIO(preview.data)) as shown:
                assert (shown.format, shown.size) == ("JPEG", (preview.width, preview.height))
    # and then each image was stored, after its previews, and the generation finished
    assert [event.kind for event in rest] == [
        EventKind.IMAGE_STORED,
        EventKind.IMAGE_STORED,
        EventKind.FINISHED,
    ]
    assert sorted(_indexes(rest, EventKind.IMAGE_STORED)) == [0, 1]
    (message,) = await chat_messages(stack.gql, video.main_chat_id)
    assert message["generation"]["status"] == "SUCCEEDED"
    stored = {event.image_id for event in rest if event.kind is EventKind.IMAGE_STORED}
    assert stored == {pk_of(image["id"]) for image in message["images"]}


STREAM_BREAKS = [
    pytest.param("error", "moderation_blocked", "CONTENT_REFUSED", id="moderation-error-event"),
    pytest.param("drop", None, "PROVIDER_UNAVAILABLE", id="dropped-connection"),
]


@pytest.mark.parametrize(("how", "provider_code", "code"), STREAM_BREAKS)
async def test_a_stream_failing_midway_fails_only_its_image_and_says_why(
    stack: OpenAIStack, how: StreamBreak, provider_code: str | None, code: str
) -> None:
    # given the second of three image calls breaking after its first partial image
    video = await seed_video(stack.gql)
    stack.fake.fail_stream(
        "images",
        after_partials=1,
        how=how,
        code=provider_code,
        type="image_generation_error",
        on_call=2,
    )
    async with stack.runtime.events.subscribe(lambda event: True) as events:
        # when
        payload = await generate_ok(
            stack.gql, "MainChat", video.main_chat_id, "three owls", imageCount=3
        )
        taken = await _take(events, _finished)

    # then that image's slot failed, with the code its failure deserves
    generation = payload["generation"]
    assert generation["status"] == "PARTIAL"
    assert (generation["completedCount"], generation["failedCount"]) == (2, 1)
    ((failed, failed_code),) = [(e["index"], e["code"]) for e in generation["errors"]]
    assert failed_code == code
    assert failed in {0, 1, 2}
    assert _indexes(taken, EventKind.IMAGE_FAILED) == [failed]
    assert _indexes(taken, EventKind.PREVIEW).count(failed) == 1
    # and the other images were stored in their slots
    others = sorted({0, 1, 2} - {failed})
    assert sorted(_indexes(taken, EventKind.IMAGE_STORED)) == others
    assert len(payload["message"]["images"]) == 2
    assert await _slots_taken(stack, payload["message"]["id"]) == others
    assert len(stack.media()) == 2
    # and no call was made again: the failure came after the answer had begun
    assert [r.status for r in stack.fake.requests_to("images")] == [200, 200, 200]


async def test_each_image_is_recorded_in_its_slot_whichever_is_stored_first(
    stack: OpenAIStack,
) -> None:
    # given the first image call held before it sends anything, so its image is stored last
    video = await seed_video(stack.gql)
    hold = stack.fake.hold_stream(0, 1)
    async with stack.runtime.events.subscribe(lambda event: True) as events:
        generating = asyncio.create_task(
            generate_ok(stack.gql, "MainChat", video.main_chat_id, "owls", imageCount=3)
        )
        first = await _take(events, lambda taken: len(_indexes(taken, EventKind.IMAGE_STORED)) == 2)

        # when the held call goes on
        hold.release()
        payload = await generating
        rest = await _take(events, _finished)

    # then every image is recorded with the slot it was stored for
    slots = await _slots(stack, payload["message"]["id"])
    stored = {
        event.image_id: event.index
        for event in first + rest
        if event.kind is EventKind.IMAGE_STORED
    }
    assert slots == stored
    assert await _slots_taken(stack, payload["message"]["id"]) == [0, 1, 2]
    assert payload["generation"]["completedCount"] == 3
