"""Generations on PostgreSQL's task queue (pgqueuer), run by `storyframe worker` processes.

The generations' rows stay the queue users see and the record of what is done; a task-queue job
is a running slot granted to one of them. `SlotGrants.grant` hands out free slots, fairly across
users (the user who would hold the fewest goes first, then the oldest generation) and within the
per-user and deployment-wide caps, as jobs whose dedupe key names the generation: a generation
holds a slot while its job exists and it has not ended (a job's own end is written a moment
after the generation's), so a job that ends, however it ends, frees the slot.
Grants are made in the transaction that queues a generation (committed with it or not at all),
by a worker each time one of its generations ends, and at every heartbeat of every worker.

pgqueuer carries the rest: workers wake on its NOTIFY, take jobs with `SKIP LOCKED`, beat their
heart, and a job whose worker died is taken by another once its heartbeat is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
from pgqueuer.adapters.persistence.qb import (
    QueryBuilderEnvironment,
    QueryQueueBuilder,
    QuerySchedulerBuilder,
)
from pgqueuer.adapters.persistence.queries import Queries
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storyframe.db.queue_schema import QUEUE_SETTINGS
from storyframe.domain.jobs import JobQueue, Ticket, current_lender
from storyframe.jobs.lending import CountedLender

log = logging.getLogger("storyframe.jobs")

ENTRYPOINT = "generation"
GRANT_LOCK = 0x5F0F_6A0B
"""The advisory lock grants take turns on, so two never hand out the same free slot."""

_HELD = f"""
    SELECT g.owner_id, count(*) AS n
    FROM {QUEUE_SETTINGS.queue_table} q
    JOIN generations g ON q.dedupe_key = 'generation:' || g.id
    WHERE q.entrypoint = '{ENTRYPOINT}' AND q.status IN ('queued', 'picked')
      AND g.status IN ('QUEUED', 'RUNNING')
      AND g.slot_state IS DISTINCT FROM 'LENT'
    GROUP BY g.owner_id
"""

_WAITING = f"""
    SELECT g.id, g.owner_id,
           row_number() OVER (PARTITION BY g.owner_id ORDER BY g.id) AS turn
    FROM generations g
    WHERE g.status = 'QUEUED' AND NOT g.cancel_requested AND g.owner_id IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM {QUEUE_SETTINGS.queue_table} q
          WHERE q.dedupe_key = 'generation:' || g.id AND q.status IN ('queued', 'picked')
      )
"""

GRANTABLE = text(
    f"""
    WITH held AS ({_HELD}), waiting AS ({_WAITING})
    SELECT w.id, w.owner_id
    FROM waiting w LEFT JOIN held h ON h.owner_id = w.owner_id
    WHERE coalesce(h.n, 0) + w.turn <= :per_user
    ORDER BY coalesce(h.n, 0) + w.turn, w.id
    LIMIT greatest(:total - (SELECT coalesce(sum(n), 0) FROM held), 0)
    """
)
"""The generations that may take a free slot now, in the order they take them."""

POSITIONS = text(
    f"""
    WITH held AS ({_HELD}), waiting AS ({_WAITING}),
    granted AS (
        SELECT g.id FROM generations g
        JOIN {QUEUE_SETTINGS.queue_table} q ON q.dedupe_key = 'generation:' || g.id
        WHERE g.status = 'QUEUED' AND q.status IN ('queued', 'picked')
    ),
    line AS (
        SELECT id, 0 AS rank FROM granted
        UNION ALL
        SELECT w.id, coalesce(h.n, 0) + w.turn FROM waiting w
        LEFT JOIN held h ON h.owner_id = w.owner_id
    )
    SELECT id, place FROM (
        SELECT id, row_number() OVER (ORDER BY rank, id) AS place FROM line
    ) ordered
    WHERE id IN :ids
    """
).bindparams(bindparam("ids", expanding=True))
"""Queued generations' places in line: those granted a slot and not yet started first, then
the rest in the order `GRANTABLE` would take them if no cap held."""


TAKE_BACK = text(
    f"""
    WITH holding AS (
        SELECT g.owner_id
        FROM {QUEUE_SETTINGS.queue_table} q
        JOIN generations g ON q.dedupe_key = 'generation:' || g.id
        WHERE q.entrypoint = '{ENTRYPOINT}' AND q.status IN ('queued', 'picked')
          AND g.status IN ('QUEUED', 'RUNNING') AND g.slot_state IS NULL
    )
    UPDATE generations SET slot_state = NULL
    WHERE id = :id AND (
        slot_state IS DISTINCT FROM 'RETURNING'
        OR (
            (SELECT count(*) FROM holding) < :total
            AND (SELECT count(*) FROM holding WHERE owner_id = :owner) < :per_user
        )
    )
    RETURNING id
    """
)
"""A returning generation takes its slot back when one is free (or at once when it is no longer
returning: requeued meanwhile). Returning ones count as held in `GRANTABLE`, so no new
generation takes the slot they wait for."""

_MARK = text("UPDATE generations SET slot_state = :state WHERE id = :id")

LEND_POLL_SECONDS = 0.25
"""How often a returning generation looks for a free slot."""


def job_key(generation_id: int) -> str:
    return f"generation:{generation_id}"


def ticket_of(payload: bytes | None) -> Ticket:
    data = json.loads(payload or b"{}")
    return Ticket(int(data["generation_id"]), int(data["owner_id"]))


def queries_on(connection: object) -> Queries:
    """pgqueuer's statements on an asyncpg connection, with Storyframe's names."""
    return Queries(
        AsyncpgDriver(connection),
        qbe=QueryBuilderEnvironment(QUEUE_SETTINGS),
        qbq=QueryQueueBuilder(QUEUE_SETTINGS),
        qbs=QuerySchedulerBuilder(QUEUE_SETTINGS),
    )


class SlotGrants:
    """Hands free running slots to queued generations, as task-queue jobs."""

    def __init__(self, *, per_user: int, total: int) -> None:
        self.per_user = max(1, per_user)
        self.total = max(1, total)

    async def within(self, session: AsyncSession) -> None:
        """Grant in the session's transaction (the one that queued a generation)."""
        await self.grant(await session.connection())

    async def grant(self, connection: AsyncConnection) -> list[Ticket]:
        """Grant what may run now, in the connection's transaction; the tickets granted."""
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GRANT_LOCK})
        rows = await connection.execute(GRANTABLE, {"per_user": self.per_user, "total": self.total})
        tickets = [Ticket(int(gid), int(owner)) for gid, owner in rows]
        if tickets:
            raw = await connection.get_raw_connection()
            await queries_on(raw.driver_connection).enqueue(
                [ENTRYPOINT] * len(tickets),
                [
                    json.dumps({"generation_id": t.row_id, "owner_id": t.owner_id}).encode()
                    for t in tickets
                ],
                [0] * len(tickets),
                dedupe_key=[job_key(t.row_id) for t in tickets],
                on_conflict="skip",
            )
        return tickets

    async def grant_now(self, engine: AsyncEngine) -> list[Ticket]:
        """Grant in a transaction of its own."""
        async with engine.begin() as connection:
            return await self.grant(connection)


class SlotLoans:
    """A running generation's slot, lent while it waits out a rate limit: marked LENT (so a
    grant can give it to another generation), then RETURNING until a slot is free again."""

    def __init__(self, engine: AsyncEngine, grants: SlotGrants) -> None:
        self._engine = engine
        self._grants = grants

    async def lend(self, generation_id: int) -> None:
        """Mark the slot LENT and grant it, in one transaction."""
        async with self._engine.begin() as connection:
            await connection.execute(_MARK, {"state": "LENT", "id": generation_id})
            await self._grants.grant(connection)

    async def release(self, generation_id: int) -> None:
        """Hold the slot again at once (the wait was stopped)."""
        await self._mark(generation_id, None)

    async def take_back(self, ticket: Ticket) -> None:
        await self._mark(ticket.row_id, "RETURNING")
        try:
            while True:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": GRANT_LOCK}
                    )
                    taken = await connection.scalar(
                        TAKE_BACK,
                        {
                            "id": ticket.row_id,
                            "owner": ticket.owner_id,
                            "total": self._grants.total,
                            "per_user": self._grants.per_user,
                        },
                    )
                if taken is not None:
                    return
                await asyncio.sleep(LEND_POLL_SECONDS)
        except BaseException:  # stopped while waiting: it holds its slot again as it ends
            await asyncio.shield(self.release(ticket.row_id))
            raise

    async def _mark(self, generation_id: int, state: str | None) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(_MARK, {"state": state, "id": generation_id})


class PostgresJobQueue(JobQueue):
    """The job queue as API processes see it when workers run the generations: queuing is
    done by the transaction that adds the generation (`SlotGrants.within`), cancelling by the
    row (the worker running it hears at its next heartbeat)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def enqueue(self, ticket: Ticket) -> None:
        return None

    def cancel(self, generation_id: int) -> bool:
        return False

    async def positions(self, generation_ids: Sequence[int]) -> dict[int, int]:
        if not generation_ids:
            return {}
        async with self._engine.connect() as connection:
            rows = await connection.execute(POSITIONS, {"ids": list(generation_ids)})
        return {int(generation_id): int(place) for generation_id, place in rows}


Work = Callable[[Ticket], Coroutine[Any, Any, None]]


class Running:
    """The generations one worker runs, each as a task it can stop: cancelled when its
    cancelling is asked for, or handed back when the worker stops."""

    def __init__(self, loans: SlotLoans | None = None) -> None:
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.stopping = False
        self._loans = loans

    async def run(self, ticket: Ticket, work: Work) -> bool:
        """Run the ticket's work; False when it was stopped because the worker is stopping
        (its job goes back to the queue, for another worker)."""
        context = contextvars.copy_context()
        if self._loans is not None:
            loans, generation_id = self._loans, ticket.row_id
            lender = CountedLender(
                partial(loans.lend, generation_id),
                partial(loans.take_back, ticket),
                partial(loans.release, generation_id),
            )
            context.run(current_lender.set, lender)
        task = asyncio.get_running_loop().create_task(work(ticket), context=context)
        self.tasks[ticket.row_id] = task
        try:
            await asyncio.wait([task])
        finally:
            self.tasks.pop(ticket.row_id, None)
        if task.cancelled():
            return not self.stopping
        error = task.exception()
        if error is not None:
            log.error(
                "a generation job failed",
                exc_info=error,
                extra={"generation_id": ticket.row_id},
            )
        return True

    def cancel(self, generation_id: int) -> None:
        task = self.tasks.get(generation_id)
        if task is not None:
            task.cancel()

    async def stop(self, grace_seconds: float, record_seconds: float) -> None:
        """Let running generations finish for `grace_seconds`, then stop them: each hands its
        unfinished images back, which is waited for up to `record_seconds`."""
        tasks = list(self.tasks.values())
        if not tasks:
            self.stopping = True
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        self.stopping = True
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=record_seconds)


async def wait_or(event: asyncio.Event, seconds: float) -> bool:
    """Wait for the event at most `seconds`; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()
