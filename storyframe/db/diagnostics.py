"""The diagnostics runs of one owner inside a repository's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storyframe.db.tables import DiagnosticRun, User

UNFINISHED = ("QUEUED", "RUNNING")


class SqlRunRows:
    def __init__(self, session: AsyncSession, owner_id: int) -> None:
        self._session = session
        self._owner_id = owner_id

    async def unfinished(self) -> int:
        # Two requests of one user take turns on the user's row, so only one run starts.
        await self._session.execute(
            select(col(User.id))
            .where(col(User.id) == self._owner_id)
            .with_for_update(key_share=True)
        )
        statement = select(func.count()).where(
            col(DiagnosticRun.owner_id) == self._owner_id,
            col(DiagnosticRun.status).in_(UNFINISHED),
        )
        return int(await self._session.scalar(statement) or 0)

    async def start(self, run_id: int, now: datetime) -> bool:
        result = await self._session.execute(
            update(DiagnosticRun)
            .where(
                col(DiagnosticRun.id) == run_id,
                col(DiagnosticRun.status) == "QUEUED",
                col(DiagnosticRun.owner_id) == self._owner_id,
            )
            .values(
                status="RUNNING",
                started_at=now,
                heartbeat_at=now,
                attempts=col(DiagnosticRun.attempts) + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)
