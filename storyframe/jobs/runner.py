"""The in-process runner: generations run as tasks of the API process (the embedded default).

The rows are the durable record: a generation waits here only in memory, and a process that
stops leaves it QUEUED (or hands its unfinished images back), for the next one to recover at
start. Users take turns: each turn starts the oldest waiting generation of the next user who
has one and is under their cap, so one user's fifty queued generations wait behind another's
one, not in front of it. A generation waiting out a provider's rate limit lends its slot
(`slot_lent`): another starts meanwhile, and the lender takes a slot back, before any new
generation starts, once one is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from functools import partial

from storyframe.domain.jobs import JobQueue, JobStore, Ticket, current_lender
from storyframe.jobs.lending import CountedLender

log = logging.getLogger("storyframe.jobs")

Work = Callable[[Ticket], Awaitable[None]]


class InProcessRunner(JobQueue):
    def __init__(self, *, per_user: int, total: int) -> None:
        self.per_user = max(1, per_user)
        self.total = max(1, total)
        self._work: Work | None = None
        self._waiting: dict[int, deque[Ticket]] = {}
        """Per user, in the order they were accepted."""
        self._running: dict[int, tuple[Ticket, asyncio.Task[None]]] = {}
        self._accepting = False
        self._tending: asyncio.Event | None = None
        self._turn = 0
        self._last_turn: dict[int, int] = {}
        """When each user last had a generation started: the one whose turn is oldest goes
        next."""
        self._lent: set[int] = set()
        """Running generations whose slot is lent."""
        self._reclaims: deque[tuple[Ticket, asyncio.Future[None]]] = deque()
        """Lenders waiting for a slot back, in the order they asked."""

    def bind(self, work: Work) -> None:
        """What running a ticket means: set once, before `start`."""
        self._work = work

    def start(self, recovered: Iterable[Ticket] = ()) -> None:
        """Take work from now on, beginning with what a previous process left."""
        self._accepting = True
        for ticket in recovered:
            self.enqueue(ticket)
        self._pump()

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def holding(self) -> int:
        """Running generations that hold a slot (not lending it)."""
        return len(self._running) - len(self._lent)

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    def enqueue(self, ticket: Ticket) -> None:
        if ticket.row_id in self._running or self._find(ticket.row_id):
            return
        self._waiting.setdefault(ticket.owner_id, deque()).append(ticket)
        self._pump()

    def cancel(self, generation_id: int) -> bool:
        held = self._find(generation_id)
        if held is not None:
            queue = self._waiting[held.owner_id]
            queue.remove(held)
            if not queue:
                del self._waiting[held.owner_id]
            return True
        running = self._running.get(generation_id)
        if running is None:
            return False
        running[1].cancel()
        return True

    async def positions(self, generation_ids: Sequence[int]) -> dict[int, int]:
        asked = set(generation_ids)
        return {
            ticket.row_id: place
            for place, ticket in enumerate(self._turns(), start=1)
            if ticket.row_id in asked
        }

    async def stop(self, grace_seconds: float, record_seconds: float) -> None:
        """Take nothing more; let running generations finish for `grace_seconds`, then stop
        them (each hands its unfinished images back to the queue) and wait up to
        `record_seconds` for that to be written. What waits stays QUEUED in the database."""
        self._accepting = False
        self._waiting.clear()
        tasks = [task for _, task in self._running.values()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=record_seconds)

    async def tend(
        self,
        store: JobStore,
        clock: Callable[[], datetime],
        interval_seconds: float,
        stale_seconds: float,
    ) -> None:
        """Until `stop_tending`: every `interval_seconds`, say the running generations are
        alive, and take on what no live process runs (queued ones, and running ones whose process
        has stopped saying so)."""
        self._tending = self._tending or asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tending.wait(), interval_seconds)
            if self._tending.is_set():
                return
            await self.tend_once(store, clock, stale_seconds)

    async def tend_once(
        self, store: JobStore, clock: Callable[[], datetime], stale_seconds: float
    ) -> None:
        """One round of `tend`; the app runs one before it serves, so what a previous process
        left is taken on first."""
        try:
            for generation_id in await store.heartbeat(list(self._running), clock()):
                self.cancel(generation_id)  # asked through another process
            if self._accepting:
                stale_before = clock() - timedelta(seconds=stale_seconds)
                for ticket in await store.recover(stale_before):
                    self.enqueue(ticket)
        except Exception:  # the database may be away for a while: try again later
            log.exception("the job runner could not reach the database")

    def stop_tending(self) -> None:
        """End `tend` after the round it is in (not in the middle of a statement)."""
        if self._tending is not None:
            self._tending.set()

    def _find(self, generation_id: int) -> Ticket | None:
        for queue in self._waiting.values():
            for ticket in queue:
                if ticket.row_id == generation_id:
                    return ticket
        return None

    def _running_of(self, owner_id: int) -> int:
        """The slots the user's generations hold."""
        return sum(
            1
            for ticket, _ in self._running.values()
            if ticket.owner_id == owner_id and ticket.row_id not in self._lent
        )

    def _free_for(self, owner_id: int) -> bool:
        return self.holding < self.total and self._running_of(owner_id) < self.per_user

    def _lender(self, ticket: Ticket) -> CountedLender:
        generation_id = ticket.row_id

        async def lend() -> None:
            self._lent.add(generation_id)
            self._pump()

        async def release() -> None:
            self._lent.discard(generation_id)

        return CountedLender(lend, partial(self._take_back, ticket), release)

    async def _take_back(self, ticket: Ticket) -> None:
        """After the wait: the slot back when one is free, or else first in line for one."""
        generation_id = ticket.row_id
        if self._free_for(ticket.owner_id):
            self._lent.discard(generation_id)
            return
        claim = asyncio.get_running_loop().create_future()
        self._reclaims.append((ticket, claim))
        try:
            await claim
        finally:
            with contextlib.suppress(ValueError):
                self._reclaims.remove((ticket, claim))
            self._lent.discard(generation_id)

    def _serve_reclaims(self) -> None:
        for ticket, claim in list(self._reclaims):
            if not claim.done() and self._free_for(ticket.owner_id):
                self._lent.discard(ticket.row_id)
                claim.set_result(None)
                self._reclaims.remove((ticket, claim))

    def _turns(self) -> list[Ticket]:
        """Every waiting ticket in the order they would start if no more came and no cap held:
        users in turn, each user's in the order accepted."""
        queues = {owner: deque(queue) for owner, queue in self._waiting.items()}
        last = dict(self._last_turn)
        order: list[Ticket] = []
        turn = self._turn
        while queues:
            owner = min(queues, key=lambda o: (last.get(o, -1), queues[o][0].row_id))
            order.append(queues[owner].popleft())
            if not queues[owner]:
                del queues[owner]
            turn += 1
            last[owner] = turn
        return order

    def _pump(self) -> None:
        """Give free slots back to the generations that lent theirs, then start waiting tickets
        while there are free slots, one user's turn at a time."""
        self._serve_reclaims()
        while self._accepting and self._work is not None and self.holding < self.total:
            ticket = self._next()
            if ticket is None:
                return
            context = contextvars.copy_context()
            context.run(current_lender.set, self._lender(ticket))
            task = asyncio.get_running_loop().create_task(
                self._run(ticket, self._work), context=context
            )
            self._running[ticket.row_id] = (ticket, task)

    def _next(self) -> Ticket | None:
        """The first waiting ticket of the user under their cap whose last turn is oldest."""
        eligible = [owner for owner in self._waiting if self._running_of(owner) < self.per_user]
        if not eligible:
            return None
        owner = min(
            eligible,
            key=lambda o: (self._last_turn.get(o, -1), self._waiting[o][0].row_id),
        )
        queue = self._waiting[owner]
        ticket = queue.popleft()
        if not queue:
            del self._waiting[owner]
        self._turn += 1
        self._last_turn[owner] = self._turn
        return ticket

    async def _run(self, ticket: Ticket, work: Work) -> None:
        try:
            await work(ticket)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a generation job failed", extra={"generation_id": ticket.row_id})
        finally:
            self._running.pop(ticket.row_id, None)
            self._lent.discard(ticket.row_id)
            if self._accepting:
                self._pump()
            else:  # stopping: a lender whose wait is over may still finish in the grace
                self._serve_reclaims()
