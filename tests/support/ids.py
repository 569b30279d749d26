"""Global IDs in the tests: the primary key and place one names, and IDs that name nothing."""

from __future__ import annotations

from storyframe.domain.places import Place, PlaceKind
from storyframe.schema.ids import encode_id, parse_id

# A primary key no test gets near: the IDs built from it name nothing.
MISSING_PK = 987_654_321

_KINDS = {
    "Frame": PlaceKind.FRAME,
    "Context": PlaceKind.CONTEXT,
    "MainChat": PlaceKind.MAIN_CHAT,
    "Project": PlaceKind.GALLERY,
}


def pk_of(global_id: str) -> int:
    parsed = parse_id(global_id)
    assert parsed is not None, global_id
    return parsed[1]


def place_of(global_id: str) -> Place:
    """The place (frame, context, main chat or gallery) a global ID names."""
    parsed = parse_id(global_id)
    assert parsed is not None, global_id
    return Place(_KINDS[parsed[0]], parsed[1])


def unknown_id(type_name: str) -> str:
    """A well-formed ID of a row that does not exist."""
    return encode_id(type_name, MISSING_PK)


def known(id: int | None) -> int:
    """The id of a row that has been added."""
    assert id is not None
    return id
