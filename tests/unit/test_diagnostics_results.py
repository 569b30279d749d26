"""Diagnostics' results as they leave a check: secrets redacted, images as sizes, camelCase JSON;
the plan of each suite, and what a run costs before it runs."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from storyframe.domain.model_catalogue import image_model
from storyframe.services.diagnostics import (
    REDACTED,
    CheckImage,
    CheckResult,
    CheckStatus,
    Suite,
    estimated_cost,
    plan,
    redacted,
)
from storyframe.services.diagnostics.costs import cheapest

KEY = "sk-proj-0123456789abcdefXYZ"


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_secrets_are_redacted_by_their_keys_and_wherever_they_appear() -> None:
    sent = {
        "apiKey": KEY,
        "api_key": KEY,
        "headers": {"Authorization": f"Bearer {KEY}", "X-Request-Id": "abc"},
        "password": "a long and quiet river",
        "newPassword": "another one",
        "token": "sf_abcdefghijklmnopqrstuvwxyz",
        "accessToken": "anything",
        "clientSecret": "shh",
        "usage": {"inputTextTokens": 12, "outputTokens": 34},
        "message": f"Incorrect API key provided: {KEY}.",
        "log": ["curl -H 'Authorization: Bearer abc.def'", "cloudinary://k:s@cloud"],
        "configured": "my-own-secret-value",
        "empty": None,
    }

    shown = redacted(sent, ["my-own-secret-value"])

    assert shown == {
        "apiKey": REDACTED,
        "api_key": REDACTED,
        "headers": {"Authorization": REDACTED, "X-Request-Id": "abc"},
        "password": REDACTED,
        "newPassword": REDACTED,
        "token": REDACTED,
        "accessToken": REDACTED,
        "clientSecret": REDACTED,
        "usage": {"inputTextTokens": 12, "outputTokens": 34},
        "message": f"Incorrect API key provided: {REDACTED}.",
        "log": [f"curl -H 'Authorization: {REDACTED}'", REDACTED],
        "configured": REDACTED,
        "empty": None,
    }
    assert KEY not in repr(shown)


def test_a_result_as_json_has_camel_case_names_and_images_as_sizes() -> None:
    data = _png(40, 30)
    image = CheckImage.read(data)
    assert image == CheckImage("image/png", data, 40, 30)
    result = CheckResult(
        "openai.edit",
        "Image edit with a reference",
        CheckStatus.PASSED,
        duration_ms=12.5,
        detail="one 40x30 image",
        input_images=[image],
        output_images=[image, image],
        estimated_cost_usd=0.01,
    )

    shown = result.as_json()

    assert shown == {
        "name": "openai.edit",
        "title": "Image edit with a reference",
        "status": "PASSED",
        "durationMs": 12.5,
        "detail": "one 40x30 image",
        "warning": None,
        "skippedReason": None,
        "request": None,
        "response": None,
        "inputImages": [
            {"contentType": "image/png", "bytes": len(data), "width": 40, "height": 30}
        ],
        "outputImages": [
            {"contentType": "image/png", "bytes": len(data), "width": 40, "height": 30}
        ]
        * 2,
        "errorCode": None,
        "error": None,
        "estimatedCostUsd": 0.01,
    }


def test_bytes_that_are_no_image_are_not_read_as_one() -> None:
    assert CheckImage.read(b"<html>not an image</html>") is None


def test_a_failure_is_one_line_with_its_code() -> None:
    result = CheckResult("openai.text", "Text completion", CheckStatus.PASSED)

    result.fail("UNAVAILABLE", "OpenAI failed\n(500)")

    assert (result.status, result.error_code, result.error) == (
        CheckStatus.FAILED,
        "UNAVAILABLE",
        "OpenAI failed\n(500)",
    )
    assert result.detail == "UNAVAILABLE: OpenAI failed (500)"


def test_the_plans_name_every_check_in_order() -> None:
    assert [name for name, _ in plan(Suite.OPENAI)] == [
        "openai.text",
        "openai.image",
        "openai.vision",
        "openai.edit",
        "openai.models",
    ]
    assert [name for name, _ in plan(Suite.API)] == [
        "api.configuration",
        "api.generation",
        "api.reference_generation",
        "api.analysis",
        "api.full_flow",
    ]
    titles = [title for suite in Suite for _, title in plan(suite)]
    assert all(titles)
    assert len(set(titles)) == len(titles)


def test_nothing_costs_money_with_the_placeholder() -> None:
    for suite in Suite:
        assert estimated_cost(suite, True, "gpt-image-2.6-flare", "gpt-5.4-mini") == 0.0


def test_a_run_with_openai_costs_a_few_cents() -> None:
    openai = estimated_cost(Suite.OPENAI, False, "gpt-image-2.6-flare", "gpt-5.4-mini")
    api = estimated_cost(Suite.API, False, "gpt-image-2.6-flare", "gpt-5.4-mini")
    with_previews = estimated_cost(
        Suite.API, False, "gpt-image-2.6-flare", "gpt-5.4-mini", partial_images=2
    )

    # two low-quality images (272 output tokens at $30 per million each) and a little more
    assert 0.0163 < openai < 0.05
    # three images, one with a reference, a description and an analysis
    assert 0.0245 < api < with_previews < 0.08


def test_a_model_without_a_price_counts_nothing() -> None:
    assert estimated_cost(Suite.OPENAI, False, "an-unknown-model", "another-one") == 0.0


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-image-2.6-flare", ("1024x1024", "low")),
        ("placeholder", ("1024x1024", "auto")),
        ("an-unknown-model", ("1024x1024", "low")),
    ],
)
def test_the_checks_ask_for_the_smallest_size_at_the_lowest_quality(
    model: str, expected: tuple[str, str]
) -> None:
    assert cheapest(image_model(model)) == expected
