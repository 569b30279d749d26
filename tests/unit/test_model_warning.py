"""What `openAIStatus` warns of a model in use: missing, retired, or retiring within 30 days."""

from __future__ import annotations

from datetime import date

import pytest

from storyframe.services.generation import ModelState

TODAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    ("listed", "shutdown", "warning"),
    [
        (True, None, None),
        (None, None, None),
        (False, None, "the provider does not offer this model"),
        (False, date(2026, 12, 10), "the provider does not offer this model"),
        (True, date(2026, 12, 1), "retired on 2026-12-01"),
        (True, TODAY, "retired on 2026-12-02"),
        (None, date(2026, 12, 3), "retires on 2026-12-03; choose another model"),
        (True, date(2027, 1, 1), "retires on 2027-01-01; choose another model"),
        (True, date(2027, 1, 2), None),
    ],
)
def test_a_model_is_warned_of_when_missing_retired_or_retiring_soon(
    listed: bool | None, shutdown: date | None, warning: str | None
) -> None:
    assert ModelState("gpt-image-2", listed, shutdown).warning(TODAY) == warning
