"""Cursor pagination shared by every connection: newest first, keyed by row id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from storyframe.domain.errors import DomainError, ErrorCode

MAX_PAGE = 100
DEFAULT_PAGE = 20

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """`first` rows with ids below `before_id` (the `after` cursor), newest first."""

    first: int = DEFAULT_PAGE
    before_id: int | None = None

    @classmethod
    def of(cls, first: int | None, before_id: int | None) -> PageRequest:
        size = DEFAULT_PAGE if first is None else first
        if size < 0 or size > MAX_PAGE:
            raise DomainError(
                ErrorCode.INVALID, f"`first` must be between 0 and {MAX_PAGE}", ["first"]
            )
        return cls(size, before_id)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool
    has_previous: bool

    @classmethod
    def from_rows(cls, rows: list[T], request: PageRequest) -> Page[T]:
        """Rows were fetched with one extra to tell whether another page follows."""
        return cls(rows[: request.first], len(rows) > request.first, request.before_id is not None)
