"""The OPENAI diagnostics suite through the real SDK against the fake OpenAI (and, without a key,
the placeholder): what each check sends and reads back, the key never shown, failures reported
per check while the run goes on, and the models' lifecycle."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from storyframe.runtime import build_provider, image_defaults
from storyframe.services.diagnostics import (
    CheckResult,
    CheckStatus,
    DiagnosticsEnv,
    Suite,
    run_suite,
)
from tests.support.apps import settings_for
from tests.support.fake_openai import (
    IMAGE_INPUT_TOKENS,
    IMAGE_OUTPUT_TOKENS,
    FakeOpenAI,
    fake_openai_fixture,  # noqa: F401
    image_urls,
)

TODAY = date(2026, 12, 2)


@asynccontextmanager
async def _env(
    tmp_path: Path, fake: FakeOpenAI | None, *, allow_paid: bool = True
) -> AsyncIterator[DiagnosticsEnv]:
    """The environment `storyframe selftest` builds: the provider the settings describe."""
    key = {} if fake is None else {"openai_api_key": SecretStr(fake.api_key)}
    url = {} if fake is None else {"openai_base_url": fake.base_url}
    settings = settings_for(None, tmp_path, **key, **url)
    provider = build_provider(settings)
    try:
        yield DiagnosticsEnv(
            provider,
            image_defaults(settings),
            TODAY,
            allow_paid=allow_paid,
            secrets=(fake.api_key,) if fake else (),
        )
    finally:
        await provider.aclose()


async def _run(tmp_path: Path, fake: FakeOpenAI | None, **options: Any) -> list[CheckResult]:
    async with _env(tmp_path, fake, **options) as env:
        return await run_suite(Suite.OPENAI, env)


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


def _shown(results: list[CheckResult]) -> str:
    return json.dumps([result.as_json() for result in results])


async def test_every_check_passes_and_shows_what_was_sent_and_answered(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    results = await _run(tmp_path, fake_openai)

    assert [(r.name, r.status) for r in results] == [
        ("openai.text", CheckStatus.PASSED),
        ("openai.image", CheckStatus.PASSED),
        ("openai.vision", CheckStatus.PASSED),
        ("openai.edit", CheckStatus.PASSED),
        ("openai.models", CheckStatus.PASSED),
    ]
    checks = _by_name(results)
    # what the fake was asked, in order, each with the key
    assert [r.endpoint for r in fake_openai.requests] == [
        "chat",
        "generations",
        "chat",
        "edits",
        "models",
    ]
    assert all(r.authorization == f"Bearer {fake_openai.api_key}" for r in fake_openai.requests)
    text_call, generation, vision_call, edit, _ = fake_openai.requests
    assert text_call.json is not None
    assert text_call.json["model"] == "gpt-5.4-mini"
    assert image_urls(text_call) == []
    assert (generation.params["quality"], generation.params["size"], generation.params["n"]) == (
        "low",
        "1024x1024",
        1,
    )
    assert len(image_urls(vision_call)) == 1
    assert len(edit.files) == 1

    # the key appears nowhere in what a page or the terminal would show
    assert fake_openai.api_key not in _shown(results)

    text = checks["openai.text"]
    assert text.request == {
        "endpoint": "POST /chat/completions",
        "model": "gpt-5.4-mini",
        "prompt": text_call.json["messages"][0]["content"],
    }
    assert text.response is not None
    assert text.response["model"] == "gpt-5.4-mini-2026-01-01"
    assert text.response["usage"]["outputTokens"] > 0
    assert text.estimated_cost_usd is not None
    assert text.estimated_cost_usd > 0
    assert text.detail.startswith("gpt-5.4-mini-2026-01-01: A description of 0 reference images")

    image = checks["openai.image"]
    assert image.request == {
        "endpoint": "POST /images/generations",
        "model": "gpt-image-2.6-flare",
        "prompt": generation.params["prompt"],
        "n": 1,
        "size": "1024x1024",
        "quality": "low",
    }
    sixty_four = {"contentType": "image/png", "width": 64, "height": 64}
    assert image.response is not None
    (made,) = image.response["images"]
    assert made == {**sixty_four, "bytes": made["bytes"]}
    assert made["bytes"] > 0
    assert image.response["usage"]["outputTokens"] == IMAGE_OUTPUT_TOKENS
    assert [(i.width, i.height) for i in image.output_images] == [(64, 64)]
    assert image.detail == "one 64x64 image at low quality"
    assert image.estimated_cost_usd is not None
    assert image.estimated_cost_usd > 0

    vision = checks["openai.vision"]
    assert vision.input_images == image.output_images
    assert vision.request is not None
    assert vision.request["images"] == [made]
    assert vision.response is not None
    assert vision.response["text"].startswith("A description of 1 reference images")

    edited = checks["openai.edit"]
    assert edited.input_images == image.output_images
    assert [(i.width, i.height) for i in edited.output_images] == [(64, 64)]
    assert edited.output_images[0].data != image.output_images[0].data
    assert edited.response is not None
    assert edited.response["usage"]["inputImageTokens"] == IMAGE_INPUT_TOKENS
    assert edited.detail == "one 64x64 image from the reference"

    models = checks["openai.models"]
    assert models.response == {
        "offered": 3,
        "models": {
            "gpt-image-2.6-flare": {"offered": True, "shutdownDate": None},
            "gpt-5.4-mini": {"offered": True, "shutdownDate": None},
        },
    }
    assert models.warning is None
    for check in results:
        assert check.duration_ms is not None
        assert check.error_code is None


async def test_a_failed_image_generation_skips_vision_and_edit_and_the_rest_runs(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail("generations", status=500, code="server_error")

    results = await _run(tmp_path, fake_openai)

    checks = _by_name(results)
    image = checks["openai.image"]
    assert (image.status, image.error_code) == (CheckStatus.FAILED, "UNAVAILABLE")
    assert image.output_images == []
    for name in ("openai.vision", "openai.edit"):
        assert checks[name].status is CheckStatus.SKIPPED
        assert "openai.image" in (checks[name].skipped_reason or "")
    assert checks["openai.text"].status is CheckStatus.PASSED
    assert checks["openai.models"].status is CheckStatus.PASSED
    assert [r.endpoint for r in fake_openai.requests] == ["chat", "generations", "models"]


async def test_a_refused_key_fails_each_check_that_asks(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail("chat", status=401, code="invalid_api_key", times=2)
    fake_openai.fail("models", status=401, code="invalid_api_key")

    results = await _run(tmp_path, fake_openai)

    checks = _by_name(results)
    assert {name: (r.status, r.error_code) for name, r in checks.items()} == {
        "openai.text": (CheckStatus.FAILED, "MISCONFIGURED"),
        "openai.image": (CheckStatus.PASSED, None),
        "openai.vision": (CheckStatus.FAILED, "MISCONFIGURED"),
        "openai.edit": (CheckStatus.PASSED, None),
        "openai.models": (CheckStatus.FAILED, "MISCONFIGURED"),
    }
    assert checks["openai.text"].detail.startswith("MISCONFIGURED: ")
    assert fake_openai.api_key not in _shown(results)


async def test_a_model_shutting_down_in_ten_days_passes_with_a_warning(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    soon = (TODAY + timedelta(days=10)).isoformat()
    fake_openai.models = {"gpt-image-2.6-flare": soon, "gpt-5.4-mini": None}

    results = await _run(tmp_path, fake_openai)

    models = _by_name(results)["openai.models"]
    assert models.status is CheckStatus.PASSED
    assert models.warning == f"gpt-image-2.6-flare shuts down on {soon}"


async def test_a_retired_or_missing_model_fails_the_check(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.models = {"gpt-image-2.6-flare": "2026-01-01"}

    results = await _run(tmp_path, fake_openai)

    models = _by_name(results)["openai.models"]
    assert (models.status, models.error_code, models.detail) == (
        CheckStatus.FAILED,
        "MISCONFIGURED",
        "gpt-image-2.6-flare was shut down on 2026-01-01; gpt-5.4-mini is not offered",
    )


async def test_without_consent_only_the_free_check_asks_openai(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    results = await _run(tmp_path, fake_openai, allow_paid=False)

    assert [r.status for r in results] == [CheckStatus.SKIPPED] * 4 + [CheckStatus.PASSED]
    assert [r.endpoint for r in fake_openai.requests] == ["models"]


async def test_without_a_key_every_check_runs_against_the_placeholder(tmp_path: Path) -> None:
    results = await _run(tmp_path, None, allow_paid=False)

    assert [r.status for r in results] == [CheckStatus.PASSED] * 5
    assert all("placeholder" in r.detail for r in results)
    checks = _by_name(results)
    image = checks["openai.image"]
    assert [(i.content_type, i.width, i.height) for i in image.output_images] == [
        ("image/png", 1024, 1024)
    ]
    assert image.request is not None
    assert "endpoint" not in image.request
    assert checks["openai.edit"].output_images[0].data != image.output_images[0].data
    assert all(r.estimated_cost_usd == 0.0 for r in results)


async def test_an_empty_answer_fails_the_text_and_vision_checks(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.chat_answer = ""

    results = await _run(tmp_path, fake_openai)

    checks = _by_name(results)
    assert (checks["openai.text"].error_code, checks["openai.text"].error) == (
        "BAD_RESPONSE",
        "OpenAI gave an empty answer",
    )
    assert (checks["openai.vision"].error_code, checks["openai.vision"].error) == (
        "BAD_RESPONSE",
        "OpenAI gave an empty description",
    )
    assert checks["openai.edit"].status is CheckStatus.PASSED
