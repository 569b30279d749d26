"""Password hashing (Argon2id) and the rules a new password must pass."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storyframe.domain.errors import DomainError, ErrorCode

PASSWORD_MIN = 10
PASSWORD_MAX = 128

# The most common passwords long enough to pass the length rule; a real deployment would also
# check a breach corpus, which this offline service cannot reach.
_COMMON = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "0123456789",
        "0987654321",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwerty1234",
        "qwerty12345",
        "asdfghjkl1",
        "zxcvbnm123",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "iloveyou12",
        "iloveyou123",
        "letmein123",
        "welcome123",
        "administrator",
        "football123",
        "baseball123",
        "sunshine123",
        "princess123",
        "dragon1234",
        "monkey1234",
        "abcdefghij",
        "abc1234567",
        "changeme123",
        "storyframe",
        "storyframe1",
        "storyframe123",
    }
)


def check_new_password(password: str, email: str) -> None:
    """Refuse passwords that are too short, too long or easy to guess."""
    if len(password) > PASSWORD_MAX:
        raise DomainError(
            ErrorCode.TOO_LONG,
            f"password is too long (at most {PASSWORD_MAX} characters)",
            ["password"],
        )
    if len(password) < PASSWORD_MIN:
        raise DomainError(
            ErrorCode.WEAK_PASSWORD,
            f"password must have at least {PASSWORD_MIN} characters",
            ["password"],
        )
    lowered = password.lower()
    local_part = email.partition("@")[0].lower()
    if (
        lowered in _COMMON
        or len(set(lowered)) < 5
        or (len(local_part) >= 4 and local_part in lowered)
    ):
        raise DomainError(ErrorCode.WEAK_PASSWORD, "password is too easy to guess", ["password"])


class Passwords:
    """Argon2id hashing off the event loop, and a verification that costs the same time
    whether or not there is a real hash to verify against."""

    def __init__(self, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._decoy = self._hasher.hash("storyframe decoy password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        """True when `password` matches `hashed`; with no hash, spends the same time, False."""
        return await asyncio.to_thread(self._verify, hashed, password)

    def _verify(self, hashed: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(hashed or self._decoy, password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False
