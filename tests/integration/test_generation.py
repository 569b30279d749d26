"""Generating images without an OpenAI key: placeholders made offline, through the same path as
real images (message first, then the generation record, stored files, prompt assembly)."""

from __future__ import annotations

import asyncio
import logging
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngImageFile

from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.image_provider import CallResult, ImageCall, ImageProvider, PartialSink
from storyframe.runtime import Runtime, build_provider
from storyframe.schema.ids import encode_id
from storyframe.services.container import Services
from storyframe.services.generation import Generated, GenerationRequest
from storyframe.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.generating import (
    chat_image_ids,
    chat_messages,
    generate_ok,
    set_context,
)
from tests.support.ids import place_of, unknown_id
from tests.support.scenes import create_frame, seed_frame, seed_video, state
from tests.support.uploading import originals

TIMES = "\N{MULTIPLICATION SIGN}"
CONTEXT_TEXT = "A lighthouse keeper and her grey cat, in watercolour."


async def _fetch(http: httpx.AsyncClient, url: str) -> bytes:
    response = await http.get(urlsplit(url).path)
    assert response.status_code == 200
    return response.content


async def test_a_frame_prompt_makes_distinct_stored_placeholder_images(
    gql: GraphQLClient, http: httpx.AsyncClient, runtime: Runtime
) -> None:
    # given
    _, frame = await seed_frame(gql, "Opening shot")

    # when
    payload = await generate_ok(gql, "Frame", frame, "a red fox at dawn", imageCount=3)

    # then
    message, generation = payload["message"], payload["generation"]
    assert message["prompt"] == "a red fox at dawn"
    assert message["finalPrompt"] == "a red fox at dawn"
    assert generation["status"] == "SUCCEEDED"
    assert (generation["requestedCount"], generation["completedCount"]) == (3, 3)
    assert generation["failedCount"] == 0
    assert generation["errors"] == []
    assert generation["placeholder"] is True
    assert generation["model"] == "placeholder"
    assert generation["usage"] is None
    assert generation["estimatedCostUsd"] is None
    assert generation["startedAt"] is not None
    assert generation["finishedAt"] is not None
    assert generation["durationMs"] >= 0
    assert message["generation"]["id"] == generation["id"]
    images = message["images"]
    assert len(images) == 3
    assert all(image["placeholder"] for image in images)
    assert len({image["url"] for image in images}) == 3
    for image in images:
        data = await _fetch(http, image["url"])
        with PILImage.open(BytesIO(data)) as decoded:
            assert isinstance(decoded, PngImageFile)
            assert decoded.size == (image["width"], image["height"]) == (1024, 1024)
            assert decoded.text["Software"] == "Storyframe placeholder"
            assert decoded.text["Description"] == "a red fox at dawn"
            assert decoded.text["Title"] == "Opening shot"  # the frame's title
    assert len(originals(runtime.settings.media_dir)) == 3
    assert sorted(await chat_image_ids(gql, frame)) == sorted(image["id"] for image in images)


async def test_the_message_and_its_generation_are_listed_in_the_chat_and_refetchable(
    gql: GraphQLClient,
) -> None:
    # given
    _, frame = await seed_frame(gql, "Shot")
    first = await generate_ok(gql, "Frame", frame, "first")
    second = await generate_ok(gql, "Frame", frame, "second", imageCount=2)

    # when
    messages = await chat_messages(gql, frame)
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on Generation { id status message { id } } } }",
        {"id": second["generation"]["id"]},
    )

    # then
    assert [m["id"] for m in messages] == [second["message"]["id"], first["message"]["id"]]
    assert messages[0] == second["message"]
    assert node["node"] == {
        "id": second["generation"]["id"],
        "status": "SUCCEEDED",
        "message": {"id": second["message"]["id"]},
    }


async def test_a_frame_prompt_carries_the_context_only_with_context(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)
    await set_context(gql, video.context_id, CONTEXT_TEXT)
    frame = await create_frame(gql, video.id, "Shot")

    # when
    without = await generate_ok(gql, "Frame", frame, "the keeper climbs the stairs")
    with_context = await generate_ok(
        gql, "Frame", frame, "the keeper climbs the stairs", withContext=True
    )

    # then
    assert without["message"]["withContext"] is False
    assert without["message"]["finalPrompt"] == "the keeper climbs the stairs"
    assert with_context["message"]["withContext"] is True
    assert with_context["message"]["finalPrompt"] == (
        f"the keeper climbs the stairs\n\nContext of the story: {CONTEXT_TEXT}"
    )


@pytest.mark.parametrize("kind", ["Context", "MainChat"])
async def test_context_and_main_chat_prompts_always_carry_the_context(
    gql: GraphQLClient, kind: str
) -> None:
    # given
    video = await seed_video(gql)
    await set_context(gql, video.context_id, CONTEXT_TEXT)
    chat = video.context_id if kind == "Context" else video.main_chat_id

    # when
    payload = await generate_ok(gql, kind, chat, "a stormy night")

    # then
    assert payload["message"]["withContext"] is False
    assert payload["message"]["finalPrompt"] == (
        f"a stormy night\n\nContext of the story: {CONTEXT_TEXT}"
    )
    assert len(payload["message"]["images"]) == 1
    assert await chat_image_ids(gql, chat) == [payload["message"]["images"][0]["id"]]


async def test_an_empty_context_adds_nothing(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)

    # when
    payload = await generate_ok(gql, "MainChat", video.main_chat_id, "a stormy night")

    # then
    assert payload["message"]["finalPrompt"] == "a stormy night"


async def test_reference_images_are_attached_and_described_in_the_prompt(
    gql: GraphQLClient,
) -> None:
    # given
    video = await seed_video(gql)
    made = await generate_ok(gql, "Context", video.context_id, "the keeper, full figure")
    reference = made["message"]["images"][0]
    frame = await create_frame(gql, video.id, "Shot")

    # when
    payload = await generate_ok(
        gql, "Frame", frame, "the keeper at the window", contextImageIds=[reference["id"]]
    )

    # then
    message = payload["message"]
    assert message["attachedImages"] == [{"id": reference["id"]}]
    prompt, description = message["finalPrompt"].split("\n\nReference images: ")
    assert prompt == "the keeper at the window"
    assert description.startswith("Placeholder description: no vision model is configured")
    assert f"Image 1: 1024{TIMES}1024 PNG" in description
    assert "Question" not in description
    assert payload["generation"]["visionModel"] == "placeholder"
    assert payload["generation"]["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        ({"imageCount": 0}, "INVALID", ["imageCount"]),
        ({"imageCount": 5}, "INVALID", ["imageCount"]),
        ({"prompt": "   "}, "BLANK", ["prompt"]),
        ({"prompt": "x" * 8001}, "TOO_LONG", ["prompt"]),
        ({"size": "333x333"}, "INVALID", ["size"]),
        ({"quality": "ultra"}, "INVALID", ["quality"]),
        ({"model": "dall-e-3"}, "INVALID", ["model"]),
        ({"frameId": unknown_id("Frame")}, "NOT_FOUND", ["frameId"]),
        ({"frameId": "not an id"}, "INVALID_ID", ["frameId"]),
        ({"contextImageIds": [unknown_id("Image")]}, "NOT_FOUND", ["contextImageIds"]),
        ({"contextImageIds": [unknown_id("Frame")]}, "WRONG_TYPE", ["contextImageIds"]),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    gql: GraphQLClient,
    runtime: Runtime,
    extra: dict[str, Any],
    code: str,
    field: list[str],
) -> None:
    # given
    _, frame = await seed_frame(gql, "Shot")
    before = await state(gql)
    variables = {"frameId": frame, "prompt": "a prompt", **extra}

    # when
    data = await gql.data(
        """
        mutation($input: GenerateFrameImagesInput!) {
          generateFrameImages(input: $input) {
            message { id } generation { id } userErrors { field message code }
          }
        }
        """,
        {"input": variables},
    )

    # then
    payload = data["generateFrameImages"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)]
    assert payload["message"] is None
    assert payload["generation"] is None
    assert await state(gql) == before
    assert await chat_messages(gql, frame) == []
    assert originals(runtime.settings.media_dir) == []


async def test_clearing_a_frame_deletes_its_generations_and_their_files(
    gql: GraphQLClient, runtime: Runtime
) -> None:
    # given
    _, frame = await seed_frame(gql, "Shot")
    made = await generate_ok(gql, "Frame", frame, "a prompt", imageCount=2)

    # when
    await gql.mutate(
        """
        mutation($id: ID!) {
          clearFrameHistory(input: {id: $id}) { deleted { messages images } userErrors { code } }
        }
        """,
        {"id": frame},
    )

    # then
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { id } }", {"id": made["generation"]["id"]}
    )
    assert node["node"] is None
    assert originals(runtime.settings.media_dir) == []


async def test_analyze_images_describes_them_offline(gql: GraphQLClient) -> None:
    # given
    video = await seed_video(gql)
    made = await generate_ok(gql, "MainChat", video.main_chat_id, "two moons", imageCount=2)
    image_ids = [image["id"] for image in made["message"]["images"]]

    # when
    data = await gql.data(
        """
        mutation($input: AnalyzeImagesInput!) {
          analyzeImages(input: $input) {
            analysis { text model placeholder usage { totalTokens } estimatedCostUsd }
            userErrors { field code }
          }
        }
        """,
        {"input": {"imageIds": image_ids, "question": "Which is brighter?"}},
    )

    # then
    payload = data["analyzeImages"]
    assert payload["userErrors"] == []
    analysis = payload["analysis"]
    assert analysis["placeholder"] is True
    assert analysis["model"] == "placeholder"
    assert "Question: Which is brighter?" in analysis["text"]
    assert f"Image 1: 1024{TIMES}1024 PNG" in analysis["text"]
    assert f"Image 2: 1024{TIMES}1024 PNG" in analysis["text"]
    assert analysis["usage"] is None


@pytest.mark.parametrize(
    ("variables", "code", "field"),
    [
        ({"imageIds": [], "question": "what?"}, "INVALID", ["imageIds"]),
        ({"imageIds": [unknown_id("Image")], "question": "what?"}, "NOT_FOUND", ["imageIds"]),
        ({"imageIds": ["nope"], "question": "what?"}, "INVALID_ID", ["imageIds"]),
        ({"imageIds": [unknown_id("Image")], "question": " "}, "BLANK", ["question"]),
        ({"imageIds": [unknown_id("Image")], "question": "q" * 2001}, "TOO_LONG", ["question"]),
        (
            {"imageIds": [encode_id("Image", 1000 + i) for i in range(17)], "question": "q"},
            "INVALID",
            ["imageIds"],
        ),
    ],
)
async def test_analyze_images_refuses_bad_input(
    gql: GraphQLClient, variables: dict[str, Any], code: str, field: list[str]
) -> None:
    # when
    data = await gql.data(
        """
        mutation($input: AnalyzeImagesInput!) {
          analyzeImages(input: $input) { analysis { text } userErrors { field code } }
        }
        """,
        {"input": variables},
    )

    # then
    assert data["analyzeImages"] == {
        "analysis": None,
        "userErrors": [{"field": field, "code": code}],
    }


async def test_without_a_key_only_the_placeholder_model_is_offered(gql: GraphQLClient) -> None:
    # when
    data = await gql.data(
        """
        query {
          imageModels { name isDefault placeholder maxImagesPerCall pricePerImageUsd }
          openAIStatus {
            configured provider error { code }
            imageModel { name available shutdownDate warning }
          }
        }
        """
    )

    # then
    assert data["imageModels"] == [
        {
            "name": "placeholder",
            "isDefault": True,
            "placeholder": True,
            "maxImagesPerCall": 1,
            "pricePerImageUsd": None,
        }
    ]
    assert data["openAIStatus"] == {
        "configured": False,
        "provider": "placeholder",
        "error": None,
        "imageModel": {
            "name": "placeholder",
            "available": True,
            "shutdownDate": None,
            "warning": None,
        },
    }


async def test_every_generation_writes_one_structured_log_line(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    _, frame = await seed_frame(gql, "Shot")

    # when
    with caplog.at_level(logging.INFO, logger="storyframe.generation"):
        payload = await generate_ok(gql, "Frame", frame, "a prompt", imageCount=2)

    # then
    (record,) = [r for r in caplog.records if r.name == "storyframe.generation"]
    fields = vars(record)
    assert record.getMessage() == "generation finished"
    assert fields["status"] == "SUCCEEDED"
    assert fields["model"] == "placeholder"
    assert (fields["requested"], fields["completed"], fields["failed"]) == (2, 2, 0)
    assert fields["chat"] == "frame"
    assert fields["duration_ms"] >= fields["first_image_ms"] >= 0
    assert fields["estimated_cost_usd"] is None
    assert fields["generation_id"] is not None
    assert payload["generation"]["status"] == "SUCCEEDED"


async def a_prepared_generation(
    gql: GraphQLClient, services: Services, prompt: str
) -> tuple[str, int]:
    """A frame, and the id of a generation of two images prepared in it (its message saved,
    QUEUED) but not run."""
    _, frame = await seed_frame(gql, "Shot")
    generation_id = await services.generation.prepare(
        GenerationRequest(chat=place_of(frame), prompt=prompt, image_count=2)
    )
    return frame, generation_id


async def test_the_work_is_separate_from_the_request_and_runs_once(
    gql: GraphQLClient, services: Services
) -> None:
    # given a generation prepared (message saved, QUEUED) but not run
    frame, generation_id = await a_prepared_generation(gql, services, "later")
    (queued,) = await chat_messages(gql, frame)
    assert queued["generation"]["status"] == "QUEUED"
    assert queued["generation"]["startedAt"] is None
    assert queued["images"] == []

    # when a worker runs it, by its id alone
    generated = await services.generation.run(generation_id)

    # then
    assert generated.generation.status == "SUCCEEDED"
    (done,) = await chat_messages(gql, frame)
    assert done["generation"]["status"] == "SUCCEEDED"
    assert len(done["images"]) == 2
    with pytest.raises(DomainError) as again:
        await services.generation.run(generation_id)
    assert again.value.code is ErrorCode.INVALID


async def test_two_workers_running_one_generation_run_it_once(
    gql: GraphQLClient, services: Services
) -> None:
    # given
    frame, generation_id = await a_prepared_generation(gql, services, "once")

    # when
    results = await asyncio.gather(
        services.generation.run(generation_id),
        services.generation.run(generation_id),
        return_exceptions=True,
    )

    # then
    done = [r for r in results if isinstance(r, Generated)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(done) == len(refused) == 1, results
    assert refused[0].code is ErrorCode.INVALID
    (message,) = await chat_messages(gql, frame)
    assert message["generation"]["status"] == "SUCCEEDED"
    assert len(message["images"]) == 2
    assert len(await chat_image_ids(gql, frame)) == 2


class Faulty:
    """The app's provider, except where a test breaks it: its `failing_call`-th image call, or
    describing reference images, raise an error nobody foresaw."""

    def __init__(self, provider: ImageProvider) -> None:
        self._provider = provider
        self.failing_call: int | None = None
        self.describing_fails = False
        self._calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    async def generate(self, call: ImageCall, on_partial: PartialSink | None = None) -> CallResult:
        self._calls += 1
        if self._calls == self.failing_call:
            raise RuntimeError("an unforeseen fault")
        return await self._provider.generate(call, on_partial)

    async def describe_references(self, images: Any, model: str) -> Any:
        if self.describing_fails:
            raise RuntimeError("an unforeseen fault")
        return await self._provider.describe_references(images, model)


@pytest.fixture
def provider(settings: Settings) -> Faulty:
    """The provider the app of this module's tests is built with."""
    return Faulty(build_provider(settings))


async def test_an_unforeseen_fault_in_one_call_keeps_the_other_calls_images(
    gql: GraphQLClient, runtime: Runtime, provider: Faulty, caplog: pytest.LogCaptureFixture
) -> None:
    # given a provider of one image per call, whose second call fails as nobody foresaw
    provider.failing_call = 2
    _, frame = await seed_frame(gql, "Shot")

    # when
    with caplog.at_level(logging.ERROR, logger="storyframe"):
        payload = await generate_ok(gql, "Frame", frame, "four owls", imageCount=4)

    # then three images are kept, and the fourth is reported, not a 500
    generation = payload["generation"]
    assert generation["status"] == "PARTIAL"
    assert generation["completedCount"] == 3
    assert [(e["code"], e["message"]) for e in generation["errors"]] == [
        ("PROVIDER_ERROR", "the image call failed unexpectedly")
    ]
    assert len(payload["message"]["images"]) == 3
    assert len(originals(runtime.settings.media_dir)) == 3
    # and the fault is in the log, with its traceback
    [record] = [r for r in caplog.records if r.getMessage() == "an image call failed unexpectedly"]
    assert record.exc_info is not None
    assert "an unforeseen fault" in str(record.exc_info[1])


async def test_an_unforeseen_fault_describing_references_still_makes_the_images(
    gql: GraphQLClient, provider: Faulty
) -> None:
    # given a reference image, and a provider whose description step breaks
    video = await seed_video(gql)
    made = await generate_ok(gql, "Context", video.context_id, "the keeper")
    reference = made["message"]["images"][0]["id"]
    provider.describing_fails = True
    frame = await create_frame(gql, video.id, "Shot")

    # when
    payload = await generate_ok(gql, "Frame", frame, "the keeper", contextImageIds=[reference])

    # then the image is made from the prompt alone, and the failed step is reported
    generation = payload["generation"]
    assert generation["status"] == "SUCCEEDED"
    assert [(e["index"], e["code"]) for e in generation["errors"]] == [(None, "PROVIDER_ERROR")]
    assert payload["message"]["finalPrompt"] == "the keeper"
    assert len(payload["message"]["images"]) == 1
