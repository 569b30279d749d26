"""Opaque global IDs ("Frame:12", base64url-encoded) and connection cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection

from storyframe.db.tables import ID_MAX
from storyframe.domain.errors import DomainError, ErrorCode

NO_ROW = 0
"""The key an ID beyond `ID_MAX` is read as: ids start at 1, so like that ID it names no row
(the database would refuse to compare its id columns with the number itself)."""


def encode_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def parse_id(global_id: str) -> tuple[str, int] | None:
    """(type name, primary key), or None when the string is not one of our IDs. Every ID the
    API is given is read here, so one naming a number no row can have reads as `NO_ROW`."""
    if not global_id or len(global_id) > 100:
        return None
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, _, pk = raw.partition(":")
    if not type_name.isalpha() or not pk.isdigit() or len(pk) > 18:
        return None
    return type_name, int(pk) if int(pk) <= ID_MAX else NO_ROW


def decode_id(global_id: str, expected: Collection[str], field: str) -> tuple[str, int]:
    """The (type name, pk) of an ID that must name one of the `expected` types."""
    parsed = parse_id(global_id)
    if parsed is None:
        raise DomainError(ErrorCode.INVALID_ID, f"`{global_id[:100]}` is not a valid ID", [field])
    if parsed[0] not in expected:
        wanted = " or ".join(sorted(expected))
        raise DomainError(
            ErrorCode.WRONG_TYPE, f"expected the ID of a {wanted}, got a {parsed[0]}", [field]
        )
    return parsed


def decode_pk(global_id: str, expected: str, field: str) -> int:
    return decode_id(global_id, {expected}, field)[1]


_CURSOR_PREFIX = "cursor:"


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id the page starts below; None (from the newest) for a cursor beyond every id."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    pk = raw.removeprefix(_CURSOR_PREFIX)
    if not raw.startswith(_CURSOR_PREFIX) or not pk.isdigit() or len(pk) > 18:
        raise DomainError(ErrorCode.INVALID, "`after` is not a valid cursor", ["after"])
    return int(pk) if int(pk) <= ID_MAX else None
