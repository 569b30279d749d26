"""The in-process job runner: users take turns, caps hold, cancel and positions, stopping.

Each job is held on an event of its own until the test lets it end, so what runs at a moment
is known without waiting on time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from storyframe.domain.jobs import Ticket, slot_lent
from storyframe.jobs import InProcessRunner


class Held:
    """Jobs that run until the test releases them, in the order they started."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self._gates: dict[int, asyncio.Event] = {}

    async def work(self, ticket: Ticket) -> None:
        self.started.append(ticket.row_id)
        gate = self._gates.setdefault(ticket.row_id, asyncio.Event())
        try:
            await gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(ticket.row_id)
            raise

    def release(self, generation_id: int) -> None:
        self._gates.setdefault(generation_id, asyncio.Event()).set()


async def settle() -> None:
    """Let started tasks reach their gates."""
    for _ in range(5):
        await asyncio.sleep(0)


def tickets(owner_id: int, ids: range) -> Iterator[Ticket]:
    return (Ticket(generation_id, owner_id) for generation_id in ids)


@pytest.fixture
def held() -> Held:
    return Held()


Make = Callable[[int, int], InProcessRunner]


@pytest.fixture
async def make(held: Held) -> AsyncIterator[Make]:
    """Started runners of `held`'s jobs, stopped at the end of the test."""
    made: list[InProcessRunner] = []

    def runner_of(per_user: int, total: int) -> InProcessRunner:
        runner = InProcessRunner(per_user=per_user, total=total)
        runner.bind(held.work)
        runner.start()
        made.append(runner)
        return runner

    yield runner_of
    for runner in made:
        await runner.stop(grace_seconds=0, record_seconds=1)


async def test_one_users_flood_does_not_starve_another(held: Held, make: Make) -> None:
    # given one user with five queued generations, then another with one
    runner = make(1, 1)
    for ticket in tickets(1, range(1, 6)):
        runner.enqueue(ticket)
    runner.enqueue(Ticket(100, 2))
    await settle()
    assert held.started == [1]

    # when the running one ends
    held.release(1)
    await settle()

    # then the other user's goes next, before the flood's second
    assert held.started == [1, 100]
    assert await runner.positions([2]) == {2: 1}


async def test_the_per_user_and_total_caps_hold(held: Held, make: Make) -> None:
    runner = make(2, 3)
    for ticket in tickets(1, range(1, 5)):
        runner.enqueue(ticket)
    runner.enqueue(Ticket(10, 2))
    runner.enqueue(Ticket(11, 2))
    await settle()

    # two of user 1's (their cap), one of user 2's (the total)
    assert sorted(held.started) == [1, 2, 10]
    assert runner.running == 3
    assert runner.waiting == 3


async def test_positions_follow_the_turns(held: Held, make: Make) -> None:
    runner = make(1, 1)
    runner.enqueue(Ticket(1, 1))  # runs
    for ticket in [Ticket(2, 1), Ticket(3, 1), Ticket(20, 2)]:
        runner.enqueue(ticket)
    await settle()

    # user 2 has had no turn yet, so theirs comes before user 1's next
    assert await runner.positions([20, 2, 3, 1]) == {20: 1, 2: 2, 3: 3}  # 1 runs: not waiting


async def test_cancel_takes_a_waiting_one_out_and_stops_a_running_one(
    held: Held, make: Make
) -> None:
    runner = make(1, 1)
    runner.enqueue(Ticket(1, 1))
    runner.enqueue(Ticket(2, 1))
    await settle()

    assert runner.cancel(2) is True
    assert await runner.positions([2]) == {}
    assert runner.cancel(1) is True
    await settle()

    assert held.cancelled == [1]
    assert held.started == [1]  # 2 never ran
    assert runner.cancel(99) is False


async def test_enqueuing_twice_runs_once(held: Held, make: Make) -> None:
    runner = make(2, 2)
    runner.enqueue(Ticket(1, 1))
    runner.enqueue(Ticket(1, 1))
    await settle()
    runner.enqueue(Ticket(1, 1))
    await settle()

    assert held.started == [1]
    assert runner.waiting == 0


async def test_stop_lets_running_jobs_finish_then_cancels_the_rest(held: Held, make: Make) -> None:
    runner = make(2, 2)
    runner.enqueue(Ticket(1, 1))
    runner.enqueue(Ticket(2, 1))
    runner.enqueue(Ticket(3, 1))  # waits
    await settle()
    held.release(1)  # ends within the grace

    await runner.stop(grace_seconds=0.01, record_seconds=1)

    assert held.cancelled == [2]
    assert held.started == [1, 2]  # nothing more started once stopping
    runner.enqueue(Ticket(4, 1))
    await settle()
    assert held.started == [1, 2]


async def test_nothing_runs_before_start(held: Held) -> None:
    runner = InProcessRunner(per_user=1, total=1)
    runner.bind(held.work)
    runner.enqueue(Ticket(1, 1))
    await settle()
    assert held.started == []

    runner.start()
    await settle()
    assert held.started == [1]
    held.release(1)
    await runner.stop(grace_seconds=1, record_seconds=1)


async def test_a_generation_waiting_out_a_rate_limit_lends_its_slot_and_takes_it_back_first() -> (
    None
):
    # given one slot, held by a generation that waits out a rate limit, then resumes
    waiting, wait_over = asyncio.Event(), asyncio.Event()
    steps: list[str] = []
    gates = {n: asyncio.Event() for n in (2, 3)}

    async def work(ticket: Ticket) -> None:
        if ticket.row_id == 1:
            steps.append("1 calls")
            async with slot_lent():
                waiting.set()
                await wait_over.wait()
            steps.append("1 resumes")
            return
        steps.append(f"{ticket.row_id} runs")
        await gates[ticket.row_id].wait()
        steps.append(f"{ticket.row_id} ends")

    runner = InProcessRunner(per_user=1, total=1)
    runner.bind(work)
    runner.start()
    try:
        runner.enqueue(Ticket(1, 1))
        await waiting.wait()

        # when another user's generation waits: it takes the lent slot
        runner.enqueue(Ticket(2, 2))
        await settle()
        assert steps == ["1 calls", "2 runs"]
        assert runner.holding == 1

        # and the wait ends while the slot is taken: the first waits for it, ahead of a newer one
        wait_over.set()
        runner.enqueue(Ticket(3, 3))
        await settle()
        assert steps == ["1 calls", "2 runs"]
        gates[2].set()
        await settle()
        assert steps == ["1 calls", "2 runs", "2 ends", "1 resumes", "3 runs"]
    finally:
        gates[3].set()
        await runner.stop(grace_seconds=1, record_seconds=1)


async def test_a_generation_stopped_while_its_slot_is_lent_ends_without_waiting_for_one() -> None:
    # given one slot, lent by a waiting generation to another that holds it
    waiting = asyncio.Event()
    cancelled: list[int] = []
    gate = asyncio.Event()

    async def work(ticket: Ticket) -> None:
        if ticket.row_id == 1:
            try:
                async with slot_lent():
                    waiting.set()
                    await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(1)
                raise
        await gate.wait()

    runner = InProcessRunner(per_user=1, total=1)
    runner.bind(work)
    runner.start()
    try:
        runner.enqueue(Ticket(1, 1))
        await waiting.wait()
        runner.enqueue(Ticket(2, 2))
        await settle()
        assert runner.running == 2

        # when the lender is cancelled while the other still holds the slot
        assert runner.cancel(1) is True
        await settle()

        # then it ends at once, not waiting for a slot, and the other keeps it
        assert cancelled == [1]
        assert runner.running == 1
        assert runner.holding == 1
    finally:
        gate.set()
        await runner.stop(grace_seconds=1, record_seconds=1)


async def test_waits_of_one_generation_that_overlap_take_its_slot_back_once() -> None:
    # given a generation with two calls waiting out rate limits, one after the other's start
    first_over, second_over = asyncio.Event(), asyncio.Event()
    both_waiting = asyncio.Event()
    steps: list[str] = []
    gate = asyncio.Event()

    async def call(over: asyncio.Event, name: str) -> None:
        async with slot_lent():
            steps.append(f"{name} waits")
            if len(steps) == 2:
                both_waiting.set()
            await over.wait()
        steps.append(f"{name} goes on")

    async def work(ticket: Ticket) -> None:
        if ticket.row_id == 1:
            await asyncio.gather(call(first_over, "a"), call(second_over, "b"))
            return
        steps.append("2 runs")
        await gate.wait()

    runner = InProcessRunner(per_user=1, total=1)
    runner.bind(work)
    runner.start()
    try:
        runner.enqueue(Ticket(1, 1))
        await both_waiting.wait()
        runner.enqueue(Ticket(2, 2))
        await settle()
        assert "2 runs" in steps  # the slot is lent once, to the other

        # when one wait ends (the other still on), then the other
        first_over.set()
        await settle()
        assert "a goes on" in steps  # still lent: nothing to take back yet
        second_over.set()
        await settle()
        assert "b goes on" not in steps  # waits for the slot the other holds
        gate.set()
        await settle()

        # then it takes its slot back once, and both calls go on
        assert steps[-1] == "b goes on"
        assert runner.holding == 0
    finally:
        gate.set()
        await runner.stop(grace_seconds=1, record_seconds=1)
