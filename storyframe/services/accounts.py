"""Accounts: signing up, logging in and out, changing passwords, and reading bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storyframe.db.tables import EMAIL_MAX, User, utcnow
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.ports import AccountStore, Viewer
from storyframe.domain.ratelimit import RateLimit
from storyframe.services.passwords import PASSWORD_MAX, Passwords, check_new_password

TOKEN_PREFIX = "sf_"


@dataclass(frozen=True, slots=True)
class Session:
    """A freshly issued token (shown once; only its hash is kept) and its user."""

    token: str
    user: User


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    if len(email) > EMAIL_MAX:
        raise DomainError(ErrorCode.TOO_LONG, "email is too long", ["email"])
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or "@" in domain
        or any(ch.isspace() or ord(ch) < 32 for ch in email)
    ):
        raise DomainError(ErrorCode.INVALID, "email is not a valid address", ["email"])
    return email


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """How often one e-mail address and one client may try to log in (or sign up, or change a
    password): kept in the process, or shared by every process on the same database."""

    per_email: RateLimit
    per_client: RateLimit


class AccountService:
    def __init__(
        self,
        store: AccountStore,
        passwords: Passwords,
        limits: LoginLimits,
        token_ttl: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._limits = limits
        self._token_ttl = token_ttl
        self._clock = clock

    async def sign_up(self, email: str, password: str, client: str) -> Session:
        if not await self._limits.per_client.allow(f"sign-up:{client}"):
            raise _rate_limited()
        normalized = normalize_email(email)
        check_new_password(password, normalized)
        user = await self._store.add_user(normalized, await self._passwords.hash(password))
        if user is None:
            raise DomainError(ErrorCode.TAKEN, "an account with this email exists", ["email"])
        return await self._issue(user)

    async def log_in(self, email: str, password: str, client: str) -> Session:
        """A new token for the right e-mail and password. A refusal takes as long whether or
        not the e-mail has an account, so the answer does not tell which."""
        key = email.strip().lower()[:EMAIL_MAX]
        if not await self._limits.per_client.allow(f"log-in:{client}") or not (
            await self._limits.per_email.allow(key)
        ):
            raise _rate_limited()
        user = await self._store.user_by_email(key)
        candidate = password[: PASSWORD_MAX * 4]
        if not await self._passwords.verify(user.password_hash if user else None, candidate):
            raise DomainError(
                ErrorCode.INVALID_CREDENTIALS, "email or password is incorrect", ["password"]
            )
        assert user is not None
        return await self._issue(user)

    async def log_out(self, viewer: Viewer) -> None:
        await self._store.revoke_token(viewer.token_id, self._clock())

    async def change_password(self, viewer: Viewer, current: str, new: str) -> User:
        """Set a new password and revoke every other token of the user."""
        if not await self._limits.per_email.allow(f"change-password:{viewer.user_id}"):
            raise _rate_limited()
        user = await self._store.user(viewer.user_id)
        assert user is not None
        assert user.id is not None
        if not await self._passwords.verify(user.password_hash, current[: PASSWORD_MAX * 4]):
            raise DomainError(
                ErrorCode.INVALID_CREDENTIALS, "current password is incorrect", ["currentPassword"]
            )
        try:
            check_new_password(new, user.email)
        except DomainError as error:
            raise DomainError(error.code, error.message, ["newPassword"]) from None
        await self._store.set_password(user.id, await self._passwords.hash(new))
        await self._store.revoke_tokens_except(user.id, viewer.token_id, self._clock())
        return user

    async def authenticate(self, token: str) -> Viewer | None:
        """The viewer of a live token; None for an unknown, revoked or expired one."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        return await self._store.token_owner(hash_token(token), self._clock())

    async def _issue(self, user: User) -> Session:
        assert user.id is not None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self._store.add_token(user.id, hash_token(token), self._clock() + self._token_ttl)
        return Session(token, user)


def _rate_limited() -> DomainError:
    return DomainError(ErrorCode.RATE_LIMITED, "too many attempts; try again later", None)
