"""What crosses PostgreSQL's notifications: each event's small facts, read back as the same
event; an export's and a generation's are told apart; anything else is refused."""

from __future__ import annotations

import orjson
import pytest

from storyframe.domain.jobs import EventKind, ExportEvent, ExportEventKind, GenerationEvent
from storyframe.events.wire import facts_of, payload_of


def test_a_generation_event_comes_back_as_it_went() -> None:
    event = GenerationEvent(EventKind.IMAGE_STORED, 7, 3, 1, index=2, image_id=99)
    assert facts_of(payload_of(event, preview_id=None)) == (event, None)
    assert facts_of(payload_of(event, preview_id=5))[1] == 5


@pytest.mark.parametrize("kind", list(ExportEventKind))
def test_an_export_event_comes_back_as_it_went(kind: ExportEventKind) -> None:
    event = ExportEvent(kind, export_id=12, video_id=3, owner_id=1)
    payload = payload_of(event)
    assert "generation_id" not in orjson.loads(payload)
    assert facts_of(payload) == (event, None)


@pytest.mark.parametrize(
    "payload",
    [
        "[]",
        '{"kind": "PROGRESS", "export_id": "12", "video_id": 3, "owner_id": 1}',
        '{"kind": "SOMETHING", "export_id": 12, "video_id": 3, "owner_id": 1}',
        '{"kind": "QUEUED", "export_id": 12, "owner_id": 1}',
    ],
)
def test_what_is_not_an_event_of_ours_is_refused(payload: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the reasons vary; each is a ValueError
        facts_of(payload)
