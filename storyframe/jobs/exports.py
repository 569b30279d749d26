"""Exports on PostgreSQL's task queue: each queued export is one job (entrypoint `export`, dedupe
key `export:<id>`), enqueued in the transaction that queues the export and again by every
worker heartbeat for any that has none (a queue cleared by hand, a job lost with its worker).

pgqueuer holds the deployment-wide cap (the entrypoint's concurrency limit, enforced in SQL
across workers), retakes the job of a worker that died (by its heartbeat), and the export's
row says the rest: a run that finds its export no longer QUEUED leaves it alone.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storyframe.db.queue_schema import QUEUE_SETTINGS
from storyframe.domain.jobs import Ticket
from storyframe.jobs.postgres import queries_on

EXPORT_ENTRYPOINT = "export"

UNJOBBED = text(
    f"""
    SELECT e.id, e.owner_id FROM exports e
    WHERE e.status = 'QUEUED' AND NOT e.cancel_requested
      AND NOT EXISTS (
          SELECT 1 FROM {QUEUE_SETTINGS.queue_table} q
          WHERE q.dedupe_key = 'export:' || e.id AND q.status IN ('queued', 'picked')
      )
    ORDER BY e.id
    """
)
"""Queued exports that no job carries."""


def export_job_key(export_id: int) -> str:
    return f"export:{export_id}"


def export_ticket_of(payload: bytes | None) -> Ticket:
    data = json.loads(payload or b"{}")
    return Ticket(int(data["export_id"]), int(data["owner_id"]))


class ExportJobs:
    """Puts queued exports on the task queue."""

    async def within(self, session: AsyncSession) -> None:
        """In the session's transaction (the one that queued an export)."""
        await self.enqueue(await session.connection())

    async def enqueue(self, connection: AsyncConnection) -> list[Ticket]:
        rows = await connection.execute(UNJOBBED)
        tickets = [Ticket(int(pk), int(owner)) for pk, owner in rows]
        if tickets:
            raw = await connection.get_raw_connection()
            await queries_on(raw.driver_connection).enqueue(
                [EXPORT_ENTRYPOINT] * len(tickets),
                [
                    json.dumps({"export_id": t.row_id, "owner_id": t.owner_id}).encode()
                    for t in tickets
                ],
                [0] * len(tickets),
                dedupe_key=[export_job_key(t.row_id) for t in tickets],
                on_conflict="skip",
            )
        return tickets

    async def enqueue_now(self, engine: AsyncEngine) -> list[Ticket]:
        async with engine.begin() as connection:
            return await self.enqueue(connection)
