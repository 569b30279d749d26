"""The columns every table shares: bounds of text, timestamps that keep their zone on every
dialect, foreign keys that cascade."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
)
from sqlalchemy.types import TypeDecorator

NAME_MAX = 200
EMAIL_MAX = 254
TITLE_MAX = 500
CONTENT_MAX = 20_000
PROMPT_MAX = 8_000
CAPTION_MAX = 500
ID_MAX = 2**31 - 1
"""The largest id a row can have: ids are INTEGER columns, 32-bit on PostgreSQL."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every dialect (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def fk(
    target: str, *, nullable: bool, ondelete: str = "CASCADE", index: bool = True
) -> Column[int]:
    return Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index)


def timestamp() -> Column[datetime]:
    return Column(UtcDateTime(), nullable=False)


def exactly_one(*columns: str) -> str:
    return " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in columns) + " = 1"
