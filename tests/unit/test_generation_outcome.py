"""How a generation's record is kept as it runs and closed when it ends: what each step adds,
the final status, and what the user is told when nothing was made (the error of its first
image)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storyframe.db.tables import Generation
from storyframe.domain.errors import ErrorCode
from storyframe.domain.image_provider import Usage
from storyframe.services.generation.outcome import (
    Outcome,
    add_to_record,
    close_record,
    nothing_made,
    status_of,
)
from storyframe.services.generation.types import GenerationStatus, ImageFailure

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def a_generation(requested: int = 2, completed: int = 0, **values: object) -> Generation:
    generation = Generation(
        id=1,
        message_id=1,
        video_id=1,
        status="RUNNING",
        provider="openai",
        model="gpt-image-2",
        size="1024x1024",
        quality="medium",
        requested_count=requested,
        completed_count=completed,
        heartbeat_at=NOW,
    )
    for name, value in values.items():
        setattr(generation, name, value)
    return generation


# nothing_made


def _told(failures: list[ImageFailure], status: str = "FAILED", completed: int = 0) -> object:
    """What `nothing_made` tells of a generation with these failures: (code, message, field)."""
    generation = a_generation(completed=completed, status=status)
    generation.errors = [failure.as_json() for failure in failures]
    error = nothing_made(generation)
    return None if error is None else (error.code, error.message, error.field)


def test_what_is_told_is_the_error_of_the_first_image_not_of_the_first_call_to_fail() -> None:
    # given two calls that failed differently, the second image's call failing first
    outcome = Outcome(started=0.0)
    outcome.fail([1], ErrorCode.CONTENT_REFUSED, "refused")
    outcome.fail([None], ErrorCode.PROVIDER_TIMEOUT, "the references could not be described")
    outcome.fail([0], ErrorCode.PROVIDER_UNAVAILABLE, "unavailable")

    # then
    assert _told(outcome.errors) == (ErrorCode.PROVIDER_UNAVAILABLE, "unavailable", None)


def test_without_a_per_image_error_what_is_told_is_the_general_one() -> None:
    failures = [ImageFailure(None, ErrorCode.STORAGE_FAILED, "nothing could be stored")]

    assert _told(failures) == (ErrorCode.STORAGE_FAILED, "nothing could be stored", None)


def test_without_any_error_it_still_says_nothing_was_made() -> None:
    assert _told([]) == (ErrorCode.PROVIDER_ERROR, "no image was made", None)


def test_what_is_told_reads_the_errors_a_record_holds_by_position() -> None:
    # given errors as stored on the generation, in the order they were recorded
    failures = [
        ImageFailure(2, ErrorCode.INTERRUPTED, "interrupted"),
        ImageFailure(1, ErrorCode.CANCELLED, "cancelled"),
    ]

    # then
    assert _told(failures) == (ErrorCode.CANCELLED, "cancelled", None)


def test_a_refused_prompt_is_told_as_the_prompts_fault() -> None:
    failures = [ImageFailure(0, ErrorCode.CONTENT_REFUSED, "refused")]

    assert _told(failures) == (ErrorCode.CONTENT_REFUSED, "refused", ["prompt"])


@pytest.mark.parametrize(
    ("status", "completed"), [("RUNNING", 0), ("QUEUED", 0), ("PARTIAL", 1), ("SUCCEEDED", 2)]
)
def test_nothing_is_told_while_it_runs_or_once_it_made_an_image(
    status: str, completed: int
) -> None:
    failures = [ImageFailure(0, ErrorCode.PROVIDER_ERROR, "broken")]

    assert _told(failures, status, completed) is None


# status_of

STATUSES = [
    pytest.param(2, False, GenerationStatus.SUCCEEDED, id="all made"),
    pytest.param(1, False, GenerationStatus.PARTIAL, id="some made"),
    pytest.param(0, False, GenerationStatus.FAILED, id="none made"),
    pytest.param(0, True, GenerationStatus.CANCELLED, id="cancelled before any"),
    pytest.param(1, True, GenerationStatus.PARTIAL, id="cancelled after some"),
    pytest.param(2, True, GenerationStatus.SUCCEEDED, id="cancelled after all"),
]


@pytest.mark.parametrize(("completed", "cancel_requested", "status"), STATUSES)
def test_the_status_follows_the_images_made_and_whether_a_cancel_was_asked(
    completed: int, cancel_requested: bool, status: GenerationStatus
) -> None:
    generation = a_generation(2, completed, cancel_requested=cancel_requested)

    assert status_of(generation) is status


# add_to_record


def test_each_step_adds_its_usage_cost_failures_and_images_to_the_record() -> None:
    # given a record with nothing spent yet
    generation = a_generation(3)
    errors_before = generation.errors

    # when two calls end, the first with an image, the second with a failure
    add_to_record(generation, Usage(20, 5, 1056), 0.0318, completed=1)
    add_to_record(
        generation,
        Usage(10, 0, 0),
        0.00005,
        [ImageFailure(1, ErrorCode.CONTENT_REFUSED, "refused")],
    )

    # then
    assert (
        generation.input_text_tokens,
        generation.input_image_tokens,
        generation.output_tokens,
    ) == (30, 5, 1056)
    assert generation.estimated_cost_usd == pytest.approx(0.03185)
    assert generation.completed_count == 1
    assert generation.errors == [{"index": 1, "code": "CONTENT_REFUSED", "message": "refused"}]
    assert generation.errors is not errors_before  # a new list: a JSON column sees no change
    assert generation.status == "RUNNING"


def test_a_step_without_usage_or_cost_leaves_them_unknown() -> None:
    generation = a_generation(1)

    add_to_record(generation, None, None, completed=1)

    assert (generation.input_text_tokens, generation.output_tokens) == (None, None)
    assert generation.estimated_cost_usd is None
    assert (generation.completed_count, generation.errors) == (1, [])


# close_record


def test_closing_the_record_writes_the_end_and_sorts_the_errors_by_position() -> None:
    # given errors recorded as calls ended
    generation = a_generation(3, 1)
    for failure in (
        ImageFailure(2, ErrorCode.PROVIDER_TIMEOUT, "too slow"),
        ImageFailure(None, ErrorCode.NOT_FOUND, "a reference image could not be read"),
        ImageFailure(0, ErrorCode.CONTENT_REFUSED, "refused"),
    ):
        add_to_record(generation, None, None, [failure])
    outcome = Outcome(started=0.0, vision_model="gpt-5.4-mini-2026-03-17")

    # when
    close_record(generation, GenerationStatus.PARTIAL, NOW, outcome)

    # then
    assert (generation.status, generation.finished_at, generation.heartbeat_at) == (
        "PARTIAL",
        NOW,
        None,
    )
    assert generation.vision_model == "gpt-5.4-mini-2026-03-17"
    assert [(error["index"], error["code"]) for error in generation.errors] == [
        (None, "NOT_FOUND"),
        (0, "CONTENT_REFUSED"),
        (2, "PROVIDER_TIMEOUT"),
    ]


def test_closing_the_record_keeps_a_vision_model_this_run_did_not_ask() -> None:
    generation = a_generation(1, 1, vision_model="gpt-5.4-mini")

    close_record(generation, GenerationStatus.SUCCEEDED, NOW, Outcome(started=0.0))

    assert (generation.status, generation.vision_model) == ("SUCCEEDED", "gpt-5.4-mini")
