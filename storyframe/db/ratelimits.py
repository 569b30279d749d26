"""Rate limits that every API process on one PostgreSQL database shares: each attempt let
through is a row of `login_attempts`, counted under a lock on its key, so a limit holds however
many processes serve the API behind a load balancer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storyframe.db.tables import utcnow
from storyframe.domain.ratelimit import RateLimit

# Held until the transaction ends: the attempts of one key are counted one at a time.
_LOCK_KEY = text("SELECT pg_advisory_xact_lock(:lock)")

# One statement: forget the key's attempts that left the window, and record this one if the
# rest leave room for it. Every part of a statement sees the same snapshot, so the count
# leaves out the expired rows itself rather than relying on the deletion.
_RECORD = text(
    """
    WITH expired AS (
        DELETE FROM login_attempts WHERE bucket = :bucket AND key = :key AND at <= :since
    )
    INSERT INTO login_attempts (bucket, key, at)
    SELECT :bucket, :key, CAST(:now AS timestamptz)
    WHERE (
        SELECT count(*) FROM login_attempts
        WHERE bucket = :bucket AND key = :key AND at > :since
    ) < :limit
    RETURNING id
    """
)

_FORGET = text("DELETE FROM login_attempts WHERE bucket = :bucket AND at <= :since")


def key_digest(key: str) -> str:
    """What the table keeps of a key (an e-mail address, a client's address): its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()


def lock_id(bucket: str, key: str) -> int:
    """The advisory lock of one key of one bucket: a signed 64-bit hash of both."""
    digest = hashlib.sha256(f"{bucket}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SqlRateLimit(RateLimit):
    """At most `limit` attempts per key within any `window` seconds, counted in the database.

    `bucket` names the limit, so that several share the table (one per e-mail address, one per
    client). Expired attempts of the keys tried again go as they are counted; those of idle keys
    go when the process forgets the bucket's expired attempts, at most once a window."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bucket: str,
        limit: int,
        window: float,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._bucket = bucket
        self._limit = limit
        self._window = timedelta(seconds=window)
        self._clock = clock
        self._forgotten_at: datetime | None = None

    async def allow(self, key: str) -> bool:
        """Record an attempt for `key`; False, recording nothing, when it is over the limit."""
        now = self._clock()
        async with self._sessions.begin() as session:
            await session.execute(_LOCK_KEY, {"lock": lock_id(self._bucket, key)})
            recorded = await session.execute(
                _RECORD,
                {
                    "bucket": self._bucket,
                    "key": key_digest(key),
                    "since": now - self._window,
                    "now": now,
                    "limit": self._limit,
                },
            )
            allowed = recorded.first() is not None
        if self._forgotten_at is None or now - self._forgotten_at >= self._window:
            await self.forget_expired()
        return allowed

    async def forget_expired(self) -> None:
        """Delete the bucket's attempts that have left the window, idle keys' included."""
        now = self._clock()
        self._forgotten_at = now
        async with self._sessions.begin() as session:
            await session.execute(_FORGET, {"bucket": self._bucket, "since": now - self._window})
