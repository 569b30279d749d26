"""Turning global IDs of places and chats into the domain's `Place`."""

from __future__ import annotations

from storyframe.domain.places import Place, PlaceKind
from storyframe.schema.ids import decode_id


def place_of(global_id: str, field: str) -> Place:
    type_name, pk = decode_id(global_id, PlaceKind.type_names(), field)
    return Place(PlaceKind.of_type(type_name), pk)


def chat_of(global_id: str, type_name: str, field: str = "id") -> Place:
    _, pk = decode_id(global_id, {type_name}, field)
    return Place(PlaceKind.of_type(type_name), pk)
