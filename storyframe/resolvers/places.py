"""Turning global IDs of places and chats into the domain's `Place`."""

from __future__ import annotations

from storyframe.schema.ids import decode_id
from storyframe.services.places import Place, PlaceKind

_KINDS = {
    "Frame": PlaceKind.FRAME,
    "Context": PlaceKind.CONTEXT,
    "MainChat": PlaceKind.MAIN_CHAT,
    "Project": PlaceKind.GALLERY,
}


def place_of(global_id: str, field: str) -> Place:
    type_name, pk = decode_id(global_id, _KINDS.keys(), field)
    return Place(_KINDS[type_name], pk)


def chat_of(global_id: str, type_name: str, field: str = "id") -> Place:
    _, pk = decode_id(global_id, {type_name}, field)
    return Place(_KINDS[type_name], pk)
