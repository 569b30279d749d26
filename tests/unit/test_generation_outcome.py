"""What a generation tells the user when it made nothing: the error of its first image."""

from __future__ import annotations

from storyframe.domain.errors import ErrorCode
from storyframe.services.generation.outcome import Outcome, summary


def test_the_summary_is_the_error_of_the_first_image_not_of_the_first_call_to_fail() -> None:
    # given two calls that failed differently, the second image's call failing first
    outcome = Outcome(started=0.0)
    outcome.fail([1], ErrorCode.CONTENT_REFUSED, "refused")
    outcome.fail([None], ErrorCode.PROVIDER_TIMEOUT, "the references could not be described")
    outcome.fail([0], ErrorCode.PROVIDER_UNAVAILABLE, "unavailable")

    # then
    assert summary(outcome) == (ErrorCode.PROVIDER_UNAVAILABLE, "unavailable")


def test_without_a_per_image_error_the_summary_is_the_general_one() -> None:
    outcome = Outcome(started=0.0)
    outcome.fail([None], ErrorCode.STORAGE_FAILED, "nothing could be stored")

    assert summary(outcome) == (ErrorCode.STORAGE_FAILED, "nothing could be stored")


def test_without_any_error_the_summary_still_says_nothing_was_made() -> None:
    assert summary(Outcome(started=0.0)) == (ErrorCode.PROVIDER_ERROR, "no image was made")
