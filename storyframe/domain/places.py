"""Places an image can appear in, and chats a message can belong to: the one definition of each
kind of place. `storyframe.db.places` maps the kinds to tables; the API names them by type name.

Adding a kind of place is a member here and a row in `storyframe.db.places`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum


class PlaceKind(Enum):
    """Each kind with its GraphQL type name, and the column naming it on placements and, for the
    chats, on messages."""

    FRAME = ("frame", "Frame", "frame_id")
    CONTEXT = ("context", "Context", "context_id")
    MAIN_CHAT = ("main_chat", "MainChat", "main_chat_id")
    GALLERY = ("gallery", "Project", "gallery_project_id")

    def __init__(self, key: str, type_name: str, column: str) -> None:
        self.key = key
        self.label = key.replace("_", " ")
        self.type_name = type_name
        self.column = column

    @property
    def is_chat(self) -> bool:
        """A frame, a context and a main chat hold messages; a gallery holds only images."""
        return self is not PlaceKind.GALLERY

    @classmethod
    def of_type(cls, type_name: str) -> PlaceKind:
        return _BY_TYPE_NAME[type_name]

    @classmethod
    def type_names(cls) -> frozenset[str]:
        return frozenset(_BY_TYPE_NAME)


_BY_TYPE_NAME = {kind.type_name: kind for kind in PlaceKind}
CHATS = tuple(kind for kind in PlaceKind if kind.is_chat)


@dataclass(frozen=True, slots=True)
class Place:
    """A frame, a context or a main chat (all of them chats), or a project's gallery."""

    kind: PlaceKind
    id: int

    @property
    def label(self) -> str:
        return self.kind.label


@dataclass(frozen=True, slots=True)
class PlaceOwner:
    """Where a place lives: its project, and its video (None for a gallery)."""

    project_id: int
    video_id: int | None


def place_named_by(row: object, kinds: Iterable[PlaceKind] = PlaceKind) -> Place:
    """The place a row names in its place columns (`frame_id`, …, as a placement or a message
    has them): the one that is set. Raises ValueError when none is."""
    kinds = tuple(kinds)
    found = place_in([getattr(row, kind.column) for kind in kinds], kinds)
    if found is None:
        raise ValueError(f"{type(row).__name__} {getattr(row, 'id', '?')} names no place")
    return found


def place_in(values: Sequence[int | None], kinds: Sequence[PlaceKind]) -> Place | None:
    """The place the values of the `kinds`' columns (in that order) name: the one set."""
    for kind, value in zip(kinds, values, strict=True):
        if value is not None:
            return Place(kind, value)
    return None


def chat_of(message: object) -> Place:
    """The chat a message (a row with the chats' columns) belongs to."""
    return place_named_by(message, CHATS)
