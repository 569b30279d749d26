"""Checks on user-supplied text, shared by every service."""

from __future__ import annotations

from storyframe.domain.errors import DomainError, ErrorCode


def clean_name(value: str, field: str, max_length: int, *, allow_blank: bool = False) -> str:
    """Trimmed text of at most `max_length` characters; blank only when allowed."""
    cleaned = value.strip()
    if not cleaned and not allow_blank:
        raise DomainError(ErrorCode.BLANK, f"{field} can't be blank", [field])
    if len(cleaned) > max_length:
        raise DomainError(
            ErrorCode.TOO_LONG, f"{field} is too long (at most {max_length} characters)", [field]
        )
    if any(ord(ch) < 32 and ch not in "\n\t\r" for ch in cleaned):
        raise DomainError(ErrorCode.INVALID, f"{field} contains control characters", [field])
    if any("\ud800" <= ch <= "\udfff" for ch in cleaned):
        # Half of a UTF-16 pair: not a character, and not storable as UTF-8.
        raise DomainError(ErrorCode.INVALID, f"{field} contains an unpaired surrogate", [field])
    return cleaned
