"""On PostgreSQL with generations left to workers, API processes only queue them: the
transaction that adds a generation grants it a running slot when one is free (a task-queue job),
fairly across users and within the caps; the rest wait, in an order `position` reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from storyframe.domain.jobs import Ticket
from storyframe.runtime import Runtime
from storyframe.schema.ids import encode_id
from tests.support.apps import OwnedApp, owned_app, settings_for
from tests.support.clients import GraphQLClient, http_client
from tests.support.generating import generate_ok
from tests.support.ids import known, pk_of
from tests.support.scenes import seed_frame
from tests.support.sql import counting

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"])

JOBS = text(
    "SELECT dedupe_key, status::text FROM pgqueuer WHERE entrypoint = 'generation' ORDER BY id"
)
POSITION = "query($id: ID!) { node(id: $id) { ... on Generation { status position } } }"


async def _jobs(runtime: Runtime) -> list[tuple[str, str]]:
    async with runtime.engine.connect() as connection:
        return [(key, status) for key, status in await connection.execute(JOBS)]


async def _queue(gql: GraphQLClient, frame_id: str, count: int) -> list[int]:
    ids = []
    for n in range(count):
        payload = await generate_ok(gql, "Frame", frame_id, f"shot {n}", wait=False)
        assert payload["generation"]["status"] == "QUEUED"
        ids.append(pk_of(payload["generation"]["id"]))
    return ids


async def _finish(runtime: Runtime, generation_id: int) -> None:
    """What a worker's run leaves: the generation ended, its job gone."""
    async with runtime.engine.begin() as connection:
        await connection.execute(
            text("UPDATE generations SET status = 'SUCCEEDED' WHERE id = :id"),
            {"id": generation_id},
        )
        await connection.execute(
            text("DELETE FROM pgqueuer WHERE dedupe_key = :key"),
            {"key": f"generation:{generation_id}"},
        )


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> Any:
    settings = settings_for(
        database_url,
        tmp_path / "data",
        generation_jobs_in_process=False,
        generation_running_per_user=2,
        generation_running_total=3,
    )
    async with owned_app(settings) as owned:
        yield owned


async def _second_user(stack: OwnedApp) -> tuple[Any, Any]:
    session = await stack.runtime.accounts.sign_up("second@storyframe.test", "a password!", "t")
    return session, http_client(stack.app, session.token)


async def test_a_queued_generation_is_granted_a_slot_in_its_own_transaction(
    stack: OwnedApp,
) -> None:
    _, frame = await seed_frame(stack.gql)
    (generation_id,) = await _queue(stack.gql, frame, 1)

    assert await _jobs(stack.runtime) == [(f"generation:{generation_id}", "queued")]
    # granted, not started: the next to start
    node = (await stack.gql.data(POSITION, {"id": encode_id("Generation", generation_id)}))["node"]
    assert node == {"status": "QUEUED", "position": 1}


async def test_slots_go_fairly_across_users_within_the_caps(stack: OwnedApp) -> None:
    _, frame = await seed_frame(stack.gql)
    flood = await _queue(stack.gql, frame, 4)
    _, client = await _second_user(stack)
    async with client as http:
        other = GraphQLClient(http)
        _, their_frame = await seed_frame(other)
        (theirs,) = await _queue(other, their_frame, 1)

    # the flood's first two (the per-user cap), then the other user's one (the total)
    granted = {key for key, _ in await _jobs(stack.runtime)}
    assert granted == {f"generation:{i}" for i in (flood[0], flood[1], theirs)}
    jobs = stack.runtime.generator.jobs
    assert jobs is not None
    assert await jobs.positions(flood[2:]) == {flood[2]: 4, flood[3]: 5}

    # when one of the flood's ends, its next one takes the slot
    await _finish(stack.runtime, flood[0])
    assert stack.runtime.grants is not None
    assert await stack.runtime.grants.grant_now(stack.runtime.engine) == [
        Ticket(flood[2], known(stack.owner.user.id))
    ]
    assert await stack.runtime.grants.grant_now(stack.runtime.engine) == []  # nothing free


async def test_a_newer_generation_of_a_user_holding_less_waits_ahead_of_a_flood(
    stack: OwnedApp,
) -> None:
    _, frame = await seed_frame(stack.gql)
    flood = await _queue(stack.gql, frame, 4)
    _, client = await _second_user(stack)
    async with client as http:
        other = GraphQLClient(http)
        _, their_frame = await seed_frame(other)
        theirs = await _queue(other, their_frame, 2)
    jobs = stack.runtime.generator.jobs
    assert jobs is not None

    # granted and not started yet: the flood's first two and the other user's first
    places = await jobs.positions([*flood, *theirs])
    assert [places[i] for i in (flood[0], flood[1], theirs[0])] == [1, 2, 3]
    # then the other user's second (they would hold two), before the flood's third (three)
    assert [places[i] for i in (theirs[1], flood[2], flood[3])] == [4, 5, 6]


async def test_the_queue_reads_its_positions_in_one_statement(stack: OwnedApp) -> None:
    video, frame = await seed_frame(stack.gql)
    await _queue(stack.gql, frame, 2)
    query = """
    query($id: ID!) { generations(videoId: $id, first: 50) { nodes { status position } } }
    """

    counts = []
    for more in (0, 4):
        await _queue(stack.gql, frame, more)
        with counting(*stack.runtime.engines) as counter:
            nodes = (await stack.gql.data(query, {"id": video.id}))["generations"]["nodes"]
        positions = [node["position"] for node in nodes]
        assert sorted(positions) == list(range(1, len(nodes) + 1))
        counts.append(len([s for s in counter.statements if "row_number()" in s]))

    # two queued or six: one statement of positions either way
    assert counts == [1, 1]
