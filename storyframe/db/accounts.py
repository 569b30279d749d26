"""The SQL account store: users and access tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable
from sqlmodel import col, select

from storyframe.db.engine import WRITE_OPTION
from storyframe.db.reads import Reads
from storyframe.db.tables import AccessToken, User, utcnow
from storyframe.domain.ports import AccountStore, Viewer

# Built once: checked on every request, it is compiled once and found in the cache after.
_TOKEN_OWNER: Executable = (
    select(
        col(User.id).label("user_id"),
        col(AccessToken.id).label("token_id"),
        col(User.email),
        col(User.created_at),
    )
    .join(AccessToken, col(AccessToken.user_id) == col(User.id))
    .where(
        col(AccessToken.token_hash) == bindparam("token_hash"),
        col(AccessToken.revoked_at).is_(None),
        col(AccessToken.expires_at) > bindparam("now"),
    )
)


class SqlAccountStore(AccountStore):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], reads: Reads) -> None:
        self._sessions = sessions
        self._reads = reads

    async def user(self, user_id: int) -> User | None:
        async with self._sessions() as session:
            return await session.get(User, user_id)

    async def user_by_email(self, email: str) -> User | None:
        async with self._sessions() as session:
            found: User | None = await session.scalar(select(User).where(col(User.email) == email))
            return found

    async def add_user(self, email: str, password_hash: str) -> User | None:
        user = User(email=email, password_hash=password_hash)
        async with self._sessions() as session:
            await session.connection(execution_options={WRITE_OPTION: True})
            session.add(user)
            try:
                await session.commit()
            except IntegrityError:
                return None
        return user

    async def set_password(self, user_id: int, password_hash: str) -> None:
        await self._write(
            update(User)
            .where(col(User.id) == user_id)
            .values(password_hash=password_hash, updated_at=utcnow())
        )

    async def add_token(self, user_id: int, token_hash: str, expires_at: datetime) -> None:
        async with self._sessions() as session:
            await session.connection(execution_options={WRITE_OPTION: True})
            session.add(AccessToken(user_id=user_id, token_hash=token_hash, expires_at=expires_at))
            await session.commit()

    async def token_owner(self, token_hash: str, now: datetime) -> Viewer | None:
        row = await self._reads.first(_TOKEN_OWNER, {"token_hash": token_hash, "now": now})
        return Viewer(**row._asdict()) if row is not None else None

    async def revoke_token(self, token_id: int, now: datetime) -> None:
        await self._write(
            update(AccessToken)
            .where(col(AccessToken.id) == token_id, col(AccessToken.revoked_at).is_(None))
            .values(revoked_at=now)
        )

    async def revoke_tokens_except(self, user_id: int, keep_token_id: int, now: datetime) -> None:
        await self._write(
            update(AccessToken)
            .where(
                col(AccessToken.user_id) == user_id,
                col(AccessToken.id) != keep_token_id,
                col(AccessToken.revoked_at).is_(None),
            )
            .values(revoked_at=now)
        )

    async def _write(self, statement: object) -> None:
        async with self._sessions() as session:
            await session.connection(execution_options={WRITE_OPTION: True})
            await session.execute(statement)  # type: ignore[call-overload]
            await session.commit()
