"""Generations (and exports) across every owner: the job engine's view of them, and the
sweep's."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from storyframe.db.tables import DiagnosticRun, Export, Generation
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


Jobbed = type[Generation] | type[Export] | type[DiagnosticRun]


class SqlJobStore(JobStore):
    """The rows of generations, or of exports (`model`), as the job engine sees them."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], model: Jobbed = Generation
    ) -> None:
        self._sessions = sessions
        self._model = model

    async def recover(self, stale_before: datetime) -> list[Ticket]:
        model = self._model
        queued = (
            select(col(model.id), col(model.owner_id))
            .where(col(model.status) == "QUEUED", col(model.owner_id).is_not(None))
            .order_by(col(model.id))
        )
        async with self._sessions() as session:
            await _requeue(session, model, stale_before)
            rows = await session.execute(queued)
            await session.commit()
        return [
            Ticket(generation_id, owner_id)
            for generation_id, owner_id in rows
            if generation_id is not None and owner_id is not None
        ]

    async def is_running(self, generation_id: int) -> bool:
        model = self._model
        statement = select(col(model.status)).where(col(model.id) == generation_id)
        async with self._sessions() as session:
            return await session.scalar(statement) == "RUNNING"

    async def requeue_stale(self, stale_before: datetime) -> int:
        async with self._sessions() as session:
            requeued = await _requeue(session, self._model, stale_before)
            await session.commit()
        return requeued

    async def heartbeat(self, generation_ids: Collection[int], now: datetime) -> set[int]:
        if not generation_ids:
            return set()
        model = self._model
        statement = (
            update(model)
            .where(col(model.id).in_(sorted(generation_ids)), col(model.status) == "RUNNING")
            .values(heartbeat_at=now)
            .returning(col(model.id), col(model.cancel_requested))
            .execution_options(synchronize_session=False)
        )
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
            await session.commit()
        return {pk for pk, cancelled in rows if cancelled and pk is not None}


async def _requeue(session: AsyncSession, model: Jobbed, stale_before: datetime) -> int:
    """Put back to QUEUED the rows RUNNING in a process not heard of since `stale_before`; how
    many. An export whose cancelling was asked ends CANCELLED instead: it was to stop anyway."""
    last_sign = func.coalesce(col(model.heartbeat_at), col(model.started_at), col(model.created_at))
    stale = (col(model.status) == "RUNNING", last_sign < stale_before)
    values: dict[str, object] = {"status": "QUEUED"}
    if model is Generation:
        values["slot_state"] = None
    if model is Export:
        await session.execute(
            update(Export)
            .where(*stale, col(Export.cancel_requested))
            .values(
                status="CANCELLED",
                error_code="CANCELLED",
                error_message="cancelled",
                finished_at=func.current_timestamp(),
            )
            .execution_options(synchronize_session=False)
        )
    result = await session.execute(
        update(model).where(*stale).values(**values).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
