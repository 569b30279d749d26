"""Where each kind of place is stored: its table, and the columns naming it on placements and on
messages. The one mapping from `PlaceKind` to tables, for the repository, the reader and the
fakes of the tests."""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel

from storyframe.db.tables import Context, Frame, ImagePlacement, MainChat, Message, Project
from storyframe.domain.places import PlaceKind

TABLES: dict[PlaceKind, type[SQLModel]] = {
    PlaceKind.FRAME: Frame,
    PlaceKind.CONTEXT: Context,
    PlaceKind.MAIN_CHAT: MainChat,
    PlaceKind.GALLERY: Project,
}
"""The table of each kind's rows; a chat's table has a `video_id`."""

assert set(TABLES) == set(PlaceKind), "every kind of place has a table"


def table_of(kind: PlaceKind) -> type[SQLModel]:
    return TABLES[kind]


def placement_column(kind: PlaceKind) -> Any:
    """`ImagePlacement`'s column naming a place of `kind`."""
    return getattr(ImagePlacement, kind.column)


def message_column(kind: PlaceKind) -> Any:
    """`Message`'s column naming a chat of `kind`."""
    if not kind.is_chat:
        raise ValueError(f"a {kind.label} holds no messages")
    return getattr(Message, kind.column)
