"""Scale-out on one PostgreSQL: two API processes and two workers. Twenty generations are queued
through API #2 while a subscriber listens on API #1; one worker is killed (SIGKILL) while it
runs generations. Every generation ends, and every event of each reached the subscriber."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.support.documents import CREATE_FRAME, CREATE_PROJECT, CREATE_VIDEO
from tests.support.fake_openai import FakeOpenAI, fake_openai_fixture  # noqa: F401
from tests.support.polling import until
from tests.support.servers import (
    graphql,
    jobs_environment,
    running_server,
    running_worker,
    sign_up_over_http,
)
from tests.support.subscriptions import subscriptions

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"])

GENERATIONS = 20
FINAL = {"SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED"}
VIDEO_GENERATIONS_UPDATED = """
subscription($id: ID!) {
  videoGenerationsUpdated(videoId: $id) { kind index generation { id status completedCount } }
}
"""
GENERATE = """
mutation($frameId: ID!) {
  generateFrameImages(input: {frameId: $frameId, prompt: "owls", imageCount: 1}) {
    generation { id }
    userErrors { code }
  }
}
"""
STATUSES = """
query($id: ID!) { node(id: $id) { ... on Video { frames { messages { nodes {
  generation { id status completedCount attempts } } } } } } }
"""


async def test_two_api_processes_and_two_workers_lose_nothing_when_a_worker_dies(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # Image calls take a while, with two previews on the way: a worker killed while busy is
    # killed in the middle of some.
    fake_openai.seconds_per_image = 0.4
    fake_openai.partial_delays = [0.1, 0.1]
    env = jobs_environment(
        database_url,
        fake_openai.api_key,
        fake_openai.base_url,
        GENERATION_RUNNING_PER_USER="4",
        GENERATION_RUNNING_TOTAL="4",
        WORKER_CONCURRENCY="2",
    )
    data = tmp_path / "data"
    with (
        running_server(data, tmp_path / "api1.log", **env) as (first_api, first),
        running_server(data, tmp_path / "api2.log", **env) as (_, second),
    ):
        token = sign_up_over_http(second, "fleet@storyframe.test")
        project = graphql(second, CREATE_PROJECT, {"name": "P"})["createProject"]["project"]
        video = graphql(second, CREATE_VIDEO, {"projectId": project["id"], "name": "V"})
        video_id = video["createVideo"]["video"]["id"]
        frame = graphql(second, CREATE_FRAME, {"videoId": video_id, "title": "S"})["createFrame"][
            "frame"
        ]["id"]
        first.headers["Authorization"] = f"Bearer {token}"
        workers = {"PUBLIC_URL": first_api.base_url, **env}

        # one queued before anyone listens: the subscriber is told of it first (STATE), which
        # shows the subscription is live before the other nineteen are queued
        ids = [_generate(second, frame)]
        async with subscriptions(first_api.base_url, token) as ws:
            operation = await ws.subscribe(VIDEO_GENERATIONS_UPDATED, {"id": video_id})
            state = (await ws.message())["payload"]["data"]["videoGenerationsUpdated"]
            assert (state["kind"], state["generation"]["id"]) == ("STATE", ids[0])
            heard: dict[str, list[str]] = defaultdict(list)
            heard[ids[0]].append("STATE")
            finished: set[str] = set()

            async def listen() -> None:
                async for data in ws.events(operation):
                    event = data["videoGenerationsUpdated"]
                    heard[event["generation"]["id"]].append(event["kind"])
                    if event["kind"] == "FINISHED":
                        finished.add(event["generation"]["id"])
                        if len(finished) == GENERATIONS:
                            return

            listening = asyncio.create_task(listen())
            ids += [_generate(second, frame) for _ in range(GENERATIONS - 1)]

            with (
                running_worker(data, tmp_path / "worker1.log", **workers) as doomed,
                running_worker(data, tmp_path / "worker2.log", **workers),
            ):
                # both busy: more image calls in flight than one worker runs
                await until(lambda: fake_openai.in_flight >= 3, seconds=120)
                doomed.kill()
                await asyncio.wait_for(listening, 180)
                generations = _generations(first, video_id)
            await ws.stop(operation)

    assert sorted(generations) == sorted(ids)
    assert {g["status"] for g in generations.values()} == {"SUCCEEDED"}
    # some were taken over from the killed worker
    assert any(g["attempts"] == 2 for g in generations.values())
    for generation_id in ids:
        kinds = heard[generation_id]
        assert kinds[0] == ("STATE" if generation_id == ids[0] else "QUEUED"), kinds
        assert kinds[-1] == "FINISHED", kinds
        assert "STARTED" in kinds
        assert "IMAGE_STORED" in kinds
        assert kinds.index("STARTED") < kinds.index("IMAGE_STORED")
    # no image was asked for more than twice (once more after the kill, at most)
    assert len(fake_openai.requests_to("images")) <= 2 * GENERATIONS


def _generate(client: Any, frame: str) -> str:
    payload = graphql(client, GENERATE, {"frameId": frame})["generateFrameImages"]
    assert payload["userErrors"] == []
    generation_id: str = payload["generation"]["id"]
    return generation_id


def _generations(client: Any, video_id: str) -> dict[str, dict[str, Any]]:
    node = graphql(client, STATUSES, {"id": video_id})["node"]
    return {
        m["generation"]["id"]: m["generation"]
        for frame in node["frames"]
        for m in frame["messages"]["nodes"]
    }
