"""Generations across every owner: finding those whose process stopped without recording them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from storyframe.db.tables import Generation
from storyframe.domain.ports import StaleGenerations

_UNFINISHED = ("QUEUED", "RUNNING")


class SqlStaleGenerations(StaleGenerations):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def interrupt(
        self, unchanged_since: datetime, now: datetime, errors: list[dict[str, object]]
    ) -> list[int]:
        last_change = func.coalesce(col(Generation.started_at), col(Generation.created_at))
        statement = (
            update(Generation)
            .where(col(Generation.status).in_(_UNFINISHED), last_change < unchanged_since)
            .values(status="FAILED", errors=errors, finished_at=now)
            .returning(col(Generation.id))
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session:
            ids = sorted(pk for pk in (await session.scalars(statement)).all() if pk is not None)
            await session.commit()
        return ids
