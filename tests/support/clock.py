"""A clock a test sets, handed to what it builds in place of the real one."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from storyframe.db.tables import utcnow


class Clock:
    """The real time until a test sets it; from then on, the moment it was set to."""

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now

    def __call__(self) -> datetime:
        return self._now if self._now is not None else utcnow()

    def set(self, now: datetime) -> None:
        self._now = now

    def set_day(self, day: date) -> None:
        """Noon (UTC) on `day`."""
        self._now = datetime.combine(day, time(12), UTC)
