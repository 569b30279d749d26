"""Generations across every owner: the job engine's view of them, and the sweep's."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Update, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from storyframe.db.tables import Generation
from storyframe.domain.jobs import JobStore, Ticket
from storyframe.domain.ports import StaleGenerations

_last_sign = func.coalesce(
    col(Generation.heartbeat_at), col(Generation.started_at), col(Generation.created_at)
)


class SqlStaleGenerations(StaleGenerations):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def interrupt(
        self, unchanged_since: datetime, now: datetime, errors: list[dict[str, object]]
    ) -> list[tuple[int, int, int | None]]:
        statement = (
            update(Generation)
            .where(col(Generation.status) == "RUNNING", _last_sign < unchanged_since)
            .values(status="FAILED", errors=errors, finished_at=now)
            .returning(col(Generation.id), col(Generation.video_id), col(Generation.owner_id))
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
            await session.commit()
        return sorted((pk, video, owner) for pk, video, owner in rows if pk is not None)


class SqlJobStore(JobStore):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def recover(self, stale_before: datetime) -> list[Ticket]:
        queued = (
            select(col(Generation.id), col(Generation.owner_id))
            .where(col(Generation.status) == "QUEUED", col(Generation.owner_id).is_not(None))
            .order_by(col(Generation.id))
        )
        async with self._sessions() as session:
            await session.execute(_requeue(stale_before))
            rows = await session.execute(queued)
            await session.commit()
        return [
            Ticket(generation_id, owner_id)
            for generation_id, owner_id in rows
            if generation_id is not None and owner_id is not None
        ]

    async def is_running(self, generation_id: int) -> bool:
        statement = select(col(Generation.status)).where(col(Generation.id) == generation_id)
        async with self._sessions() as session:
            return await session.scalar(statement) == "RUNNING"

    async def requeue_stale(self, stale_before: datetime) -> int:
        async with self._sessions() as session:
            result = await session.execute(_requeue(stale_before))
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)

    async def heartbeat(self, generation_ids: Collection[int], now: datetime) -> set[int]:
        if not generation_ids:
            return set()
        statement = (
            update(Generation)
            .where(
                col(Generation.id).in_(sorted(generation_ids)),
                col(Generation.status) == "RUNNING",
            )
            .values(heartbeat_at=now)
            .returning(col(Generation.id), col(Generation.cancel_requested))
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
            await session.commit()
        return {pk for pk, cancelled in rows if cancelled and pk is not None}


def _requeue(stale_before: datetime) -> Update:
    return (
        update(Generation)
        .where(col(Generation.status) == "RUNNING", _last_sign < stale_before)
        .values(status="QUEUED", slot_state=None)
        .execution_options(synchronize_session=False)
    )
