"""The schema's objects made cheaply: built without their dataclass `__init__`, with fields
worked out when they are read rather than when the object is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

_UNSET: Any = object()


class Derived:
    """A Strawberry type's field whose value `make` works out from the object each time it is
    read: a node's `id`, an edge's `cursor`. Most answers never select them, and encoding every
    one as its object was built cost a few percent of a large query.

    It is a dataclass field's descriptor: the class's default is `_UNSET`, so the field is
    never passed, and giving a value is refused. Declare it as `id: strawberry.ID =
    Derived(...)  # type: ignore[assignment]`."""

    def __init__(self, make: Callable[[Any], Any], made_from: str) -> None:
        self._make = make
        self._made_from = made_from

    def __get__(self, owner: Any, cls: type[Any] | None = None) -> Any:
        return _UNSET if owner is None else self._make(owner)

    def __set__(self, owner: object, value: object) -> None:
        if value is not _UNSET:
            raise AttributeError(f"this field is made from {self._made_from}; it is not given")


T = TypeVar("T")


def built(cls: type[T], **fields: Any) -> T:
    """An object of a Strawberry type with these fields, made without the dataclass's
    `__init__`, which costs more than everything else a large answer does with the thousands
    of objects it builds. Every field must be given (derived ones excepted), as `__init__`
    would require; `tests/unit/test_built.py` checks that it makes what `__init__` makes."""
    made = object.__new__(cls)
    made.__dict__ = fields
    return made
