"""The model catalog: limits, snapshots, prices and retirements."""

from __future__ import annotations

from datetime import date

import pytest

from storyframe.domain.image_provider import Usage
from storyframe.domain.model_catalogue import (
    IMAGE_MODELS,
    base_name,
    image_model,
    usable_image_models,
    vision_cost,
)
from storyframe.services.generation.pipeline import groups


@pytest.mark.parametrize(
    ("indexes", "per_call", "calls"),
    [
        ([0], 10, [[0]]),
        ([0, 1, 2, 3], 10, [[0, 1, 2, 3]]),
        ([0, 1, 2, 3], 1, [[0], [1], [2], [3]]),
        ([0, 1, 2, 3], 3, [[0, 1, 2], [3]]),
        ([1, 3], 1, [[1], [3]]),  # the images a resumed generation still needs
        ([0, 2, 3], 2, [[0, 2], [3]]),
    ],
)
def test_images_are_split_into_calls(
    indexes: list[int], per_call: int, calls: list[list[int]]
) -> None:
    assert groups(indexes, per_call) == calls


def test_no_default_or_listed_model_is_retired() -> None:
    retired = {"dall-e-2", "dall-e-3", "gpt-image-1"}
    assert not retired & set(IMAGE_MODELS)
    from storyframe.settings import Settings

    defaults = Settings(openai_api_key=None)
    assert defaults.openai_image_model in IMAGE_MODELS
    assert IMAGE_MODELS[defaults.openai_image_model].shutdown_date is None


def test_models_past_their_shutdown_date_are_not_offered() -> None:
    before = {spec.name for spec in usable_image_models("gpt-image-2.6-flare", date(2026, 11, 30))}
    after = {spec.name for spec in usable_image_models("gpt-image-2.6-flare", date(2026, 12, 1))}
    assert {"gpt-image-1.5", "gpt-image-1-mini"} <= before
    assert not {"gpt-image-1.5", "gpt-image-1-mini"} & after
    assert "gpt-image-2.6-flare" in after


def test_the_configured_model_comes_first_even_when_unknown() -> None:
    specs = usable_image_models("my-compatible-model", date(2026, 11, 25))
    assert specs[0].name == "my-compatible-model"
    assert (specs[0].max_images_per_call, specs[0].max_reference_images) == (1, 0)
    assert specs[0].prices is None
    assert specs[0].known is False


def test_a_snapshot_has_its_model_spec_under_its_own_name() -> None:
    assert base_name("gpt-image-2-2026-04-21") == "gpt-image-2"
    spec = image_model("gpt-image-2-2026-04-21")
    assert spec.name == "gpt-image-2-2026-04-21"
    assert spec.max_images_per_call == IMAGE_MODELS["gpt-image-2"].max_images_per_call
    assert spec.prices == IMAGE_MODELS["gpt-image-2"].prices


def test_costs_come_from_usage_or_else_from_the_image_count() -> None:
    spec = image_model("gpt-image-2.6-flare")
    usage = Usage(input_text_tokens=10, input_image_tokens=200, output_tokens=1056)
    assert spec.estimate(usage, 1, "medium") == pytest.approx(
        (10 * 5.0 + 200 * 8.0 + 1056 * 30.0) / 1e6
    )
    assert spec.estimate(None, 2, "low") == pytest.approx(2 * 272 * 30.0 / 1e6)
    assert image_model("unknown-model").estimate(usage, 1, "medium") is None


def test_vision_costs_know_snapshots_and_not_strangers() -> None:
    usage = Usage(input_text_tokens=1000, output_tokens=100)
    assert vision_cost("gpt-5.4-mini-2026-03-17", usage) == pytest.approx(
        (1000 * 0.75 + 100 * 4.5) / 1e6
    )
    assert vision_cost("someone-elses-model", usage) is None
    assert vision_cost("gpt-5.4-mini", None) is None
