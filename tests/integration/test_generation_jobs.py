"""Generate mutations as jobs, through the API on both databases: they answer at once with the
generation QUEUED, `wait: true` answers once it has ended, and an idempotency key makes a retry
safe. The provider is held (paused on an event) where a test needs a generation still running."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from storyframe.db.tables import Generation, Message
from storyframe.domain.image_provider import CallResult, ImageCall, ImageProvider, PartialSink
from storyframe.domain.jobs import EventKind, GenerationEvent, Ticket
from storyframe.runtime import Runtime, build_provider
from storyframe.schema.ids import decode_pk, encode_id
from storyframe.settings import Settings
from tests.support.clients import GraphQLClient, sign_up
from tests.support.generating import generate
from tests.support.polling import until
from tests.support.scenes import create_frame, seed_video

KEY = "9b7c1f0e-5d1c-4f4e-9a55-2f1c3e7d8a10"


class Held:
    """The app's provider, whose image calls wait for `go` once `hold` is set; counts calls."""

    def __init__(self, provider: ImageProvider) -> None:
        self._provider = provider
        self.calls: list[ImageCall] = []
        self.hold = False
        self.go = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    async def generate(self, call: ImageCall, on_partial: PartialSink | None = None) -> CallResult:
        self.calls.append(call)
        if self.hold:
            await self.go.wait()
        return await self._provider.generate(call, on_partial)


@pytest.fixture
def provider(settings: Settings) -> Held:
    return Held(build_provider(settings))


async def _count(runtime: Runtime, model: type[Generation] | type[Message]) -> int:
    async with runtime.sessions() as session:
        return int((await session.scalar(select(func.count()).select_from(model))) or 0)


async def _frame(gql: GraphQLClient) -> str:
    video = await seed_video(gql)
    return await create_frame(gql, video.id, "Shot")


async def test_a_generate_mutation_answers_at_once_with_the_generation_queued(
    gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    provider.hold = True
    frame = await _frame(gql)

    payload = await generate(gql, "Frame", frame, "owls", imageCount=2, wait=False)

    assert payload["userErrors"] == []
    assert payload["generation"]["status"] == "QUEUED"
    assert payload["message"]["prompt"] == "owls"
    assert payload["message"]["images"] == []
    # and it runs all the same, to its end
    await until(lambda: len(provider.calls) == 2)
    async with runtime.events.subscribe(lambda e: e.kind is EventKind.FINISHED) as finished:
        provider.go.set()
        event = await anext(finished)
    assert isinstance(event, GenerationEvent)
    assert encode_id("Generation", event.generation_id) == payload["generation"]["id"]


async def test_wait_answers_once_the_generation_has_ended(
    gql: GraphQLClient, provider: Held
) -> None:
    frame = await _frame(gql)

    payload = await generate(gql, "Frame", frame, "owls", imageCount=2, wait=True)

    assert payload["generation"]["status"] == "SUCCEEDED"
    assert len(payload["message"]["images"]) == 2


async def test_the_same_key_and_input_give_the_first_answer_and_run_nothing_more(
    gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    frame = await _frame(gql)
    first = await generate(gql, "Frame", frame, "owls", idempotencyKey=KEY)

    again = await generate(gql, "Frame", frame, "owls", idempotencyKey=KEY)

    assert again["userErrors"] == []
    assert again["generation"]["id"] == first["generation"]["id"]
    assert again["message"]["id"] == first["message"]["id"]
    assert len(provider.calls) == 1
    assert await _count(runtime, Generation) == 1
    assert await _count(runtime, Message) == 1


async def test_a_retry_while_the_first_is_running_waits_for_it_and_calls_once(
    gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    provider.hold = True
    frame = await _frame(gql)
    first = asyncio.create_task(generate(gql, "Frame", frame, "owls", idempotencyKey=KEY))
    await until(lambda: len(provider.calls) == 1)

    retry = asyncio.create_task(generate(gql, "Frame", frame, "owls", idempotencyKey=KEY))
    await asyncio.sleep(0)  # the retry is in before the first ends
    provider.go.set()
    answers: Sequence[dict[str, Any]] = await asyncio.gather(first, retry)

    assert {a["generation"]["id"] for a in answers} == {answers[0]["generation"]["id"]}
    assert [a["generation"]["status"] for a in answers] == ["SUCCEEDED", "SUCCEEDED"]
    assert len(provider.calls) == 1
    assert await _count(runtime, Generation) == 1


async def test_the_same_key_with_other_input_is_a_conflict_that_changes_nothing(
    gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    frame = await _frame(gql)
    await generate(gql, "Frame", frame, "owls", idempotencyKey=KEY)

    other = await generate(gql, "Frame", frame, "two owls", idempotencyKey=KEY)

    assert other["userErrors"][0]["code"] == "IDEMPOTENCY_CONFLICT"
    assert other["userErrors"][0]["field"] == ["idempotencyKey"]
    assert len(provider.calls) == 1
    assert await _count(runtime, Message) == 1


async def test_concurrent_requests_with_one_key_make_one_generation(
    gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    frame = await _frame(gql)

    answers = await asyncio.gather(
        *(generate(gql, "Frame", frame, "owls", idempotencyKey=KEY) for _ in range(4))
    )

    assert len({a["generation"]["id"] for a in answers}) == 1
    assert all(a["userErrors"] == [] for a in answers)
    assert await _count(runtime, Generation) == 1
    assert len(provider.calls) == 1


async def test_keys_are_the_users_own(
    gql: GraphQLClient, anonymous_gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    frame = await _frame(gql)
    await generate(gql, "Frame", frame, "owls", idempotencyKey=KEY)
    token = await sign_up(anonymous_gql, "other@storyframe.test", "a long and quiet river")
    anonymous_gql.http.headers["Authorization"] = f"Bearer {token}"
    their_frame = await _frame(anonymous_gql)

    theirs = await generate(anonymous_gql, "Frame", their_frame, "owls", idempotencyKey=KEY)

    assert theirs["userErrors"] == []
    assert await _count(runtime, Generation) == 2


async def test_another_users_generation_cannot_be_cancelled(
    gql: GraphQLClient, anonymous_gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    frame = await _frame(gql)
    mine = await generate(gql, "Frame", frame, "owls", wait=True)
    token = await sign_up(anonymous_gql, "other@storyframe.test", "a long and quiet river")
    anonymous_gql.http.headers["Authorization"] = f"Bearer {token}"

    answer = await anonymous_gql.data(CANCEL, {"id": mine["generation"]["id"]})

    assert answer["cancelGeneration"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert answer["cancelGeneration"]["generation"] is None


async def test_a_queued_generation_is_cancelled_at_once(
    gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    # given a generation waiting behind another of the same user, at a cap of one
    runtime.runner.per_user = 1
    provider.hold = True
    frame = await _frame(gql)
    await generate(gql, "Frame", frame, "first", wait=False)
    await until(lambda: len(provider.calls) == 1)
    waiting = await generate(gql, "Frame", frame, "second", wait=False)
    assert runtime.runner.waiting == 1

    # when
    answer = await gql.data(CANCEL, {"id": waiting["generation"]["id"]})

    # then it ends at once, having called nothing
    cancelled = answer["cancelGeneration"]
    assert cancelled["userErrors"] == []
    assert cancelled["generation"]["status"] == "CANCELLED"
    assert runtime.runner.waiting == 0
    provider.go.set()
    assert len(provider.calls) == 1


CANCEL = """
mutation($id: ID!) {
  cancelGeneration(input: {id: $id}) {
    generation { id status cancelRequested }
    userErrors { field message code }
  }
}
"""


GENERATIONS = """
query($videoId: ID, $projectId: ID, $status: [GenerationStatus!], $first: Int, $after: String) {
  generations(
    videoId: $videoId, projectId: $projectId, status: $status, first: $first, after: $after
  ) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id status position message { prompt } }
  }
}
"""


async def test_the_queue_and_history_are_listed_with_positions(
    gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    # given one generation running (held) and two waiting behind it, at a cap of one
    runtime.runner.per_user = 1
    provider.hold = True
    video = await seed_video(gql)
    frame = await create_frame(gql, video.id, "Shot")
    for prompt in ("first", "second", "third"):
        await generate(gql, "Frame", frame, prompt, wait=False)
    await until(lambda: len(provider.calls) == 1)

    # when
    queue = await gql.data(GENERATIONS, {"videoId": video.id, "status": ["QUEUED", "RUNNING"]})
    by_project = await gql.data(GENERATIONS, {"projectId": video.project_id, "first": 2})
    rest = await gql.data(
        GENERATIONS,
        {
            "projectId": video.project_id,
            "after": by_project["generations"]["pageInfo"]["endCursor"],
        },
    )

    # then newest first, the waiting ones with their places
    listed = queue["generations"]
    assert listed["totalCount"] == 3
    assert [(n["message"]["prompt"], n["status"], n["position"]) for n in listed["nodes"]] == [
        ("third", "QUEUED", 2),
        ("second", "QUEUED", 1),
        ("first", "RUNNING", None),
    ]
    assert [n["message"]["prompt"] for n in by_project["generations"]["nodes"]] == [
        "third",
        "second",
    ]
    assert by_project["generations"]["pageInfo"]["hasNextPage"] is True
    assert [n["message"]["prompt"] for n in rest["generations"]["nodes"]] == ["first"]
    provider.go.set()


async def test_generations_need_one_scope_and_show_only_the_users_own(
    gql: GraphQLClient, anonymous_gql: GraphQLClient, provider: Held
) -> None:
    video = await seed_video(gql)
    frame = await create_frame(gql, video.id, "Shot")
    await generate(gql, "Frame", frame, "owls", wait=True)
    token = await sign_up(anonymous_gql, "other@storyframe.test", "a long and quiet river")
    anonymous_gql.http.headers["Authorization"] = f"Bearer {token}"

    theirs = await anonymous_gql.data(GENERATIONS, {"videoId": video.id})
    neither = await gql.execute(GENERATIONS, {})

    assert theirs["generations"]["nodes"] == []
    assert theirs["generations"]["totalCount"] == 0
    assert neither["errors"][0]["extensions"]["code"] == "INVALID"


async def _change(runtime: Runtime, generation_id: int, **values: Any) -> None:
    """Write a generation's row as another process would have left it."""
    async with runtime.sessions() as session:
        row = await session.get(Generation, generation_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        await session.commit()


async def test_the_job_store_keeps_running_ones_alive_and_recovers_what_no_one_runs(
    gql: GraphQLClient, provider: Held, runtime: Runtime
) -> None:
    # given three finished generations made to look as other processes left them
    frame = await _frame(gql)
    ids = [
        decode_pk(
            (await generate(gql, "Frame", frame, p, wait=True))["generation"]["id"],
            "Generation",
            "id",
        )
        for p in ("alive", "dead", "waiting")
    ]
    alive, dead, waiting = ids
    now = runtime.generator.clock()
    long_ago = now - timedelta(minutes=5)
    await _change(runtime, alive, status="RUNNING", heartbeat_at=long_ago, cancel_requested=True)
    await _change(runtime, dead, status="RUNNING", heartbeat_at=long_ago)
    await _change(runtime, waiting, status="QUEUED")
    store = runtime.job_store

    # when a process says it runs the first, then another looks for work
    cancelled = await store.heartbeat([alive], now)
    recovered = await store.recover(now - timedelta(seconds=30))

    # then the first is alive (and told it was asked to stop); the rest are taken on
    assert cancelled == {alive}
    owner = recovered[0].owner_id
    assert recovered == [Ticket(dead, owner), Ticket(waiting, owner)]
    async with runtime.sessions() as session:
        statuses = {g.id: g.status for g in (await session.scalars(select(Generation))).all()}
    assert statuses == {alive: "RUNNING", dead: "QUEUED", waiting: "QUEUED"}
