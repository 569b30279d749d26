"""Generations followed over `graphql-transport-ws`: a real `storyframe serve` process, a real
WebSocket client, and the fake OpenAI, whose streams the tests hold between their partial images.

A generate mutation answers at once with the generation QUEUED; the subscriber then sees the
state as it stands, each preview before its image is stored, each stored image's URL answering
when its event arrives, and the FINISHED event last, after which the subscription completes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.documents import CREATE_FRAME, CREATE_PROJECT, CREATE_VIDEO
from tests.support.fake_openai import FakeOpenAI, fake_openai_fixture  # noqa: F401
from tests.support.polling import until
from tests.support.servers import graphql, running_server, sign_up_over_http
from tests.support.subscriptions import subscriptions

EVENT = """
  kind index
  generation { id status completedCount position }
  preview { index sequence url width height }
  image { id url }
"""
GENERATION_UPDATED = f"subscription($id: ID!) {{ generationUpdated(id: $id) {{ {EVENT} }} }}"
VIDEO_GENERATIONS_UPDATED = (
    f"subscription($id: ID!) {{ videoGenerationsUpdated(videoId: $id) {{ {EVENT} }} }}"
)
GENERATE = """
mutation($input: GenerateFrameImagesInput!) {
  generateFrameImages(input: $input) {
    generation { id status }
    userErrors { field message code }
  }
}
"""
CANCEL = """
mutation($id: ID!) {
  cancelGeneration(input: {id: $id}) {
    generation { id status cancelRequested }
    userErrors { field message code }
  }
}
"""


@dataclass
class Served:
    client: httpx.Client
    base_url: str
    token: str
    video_id: str
    frame_id: str

    def generate(self, **extra: Any) -> str:
        variables = {"input": {"frameId": self.frame_id, "prompt": "owls", **extra}}
        payload = graphql(self.client, GENERATE, variables)["generateFrameImages"]
        assert payload["userErrors"] == []
        assert payload["generation"]["status"] == ("SUCCEEDED" if extra.get("wait") else "QUEUED")
        generation_id: str = payload["generation"]["id"]
        return generation_id


COMPLETED = "query($id: ID!) { node(id: $id) { ... on Generation { completedCount } } }"


def _completed(app: Served, generation_id: str) -> int:
    count: int = graphql(app.client, COMPLETED, {"id": generation_id})["node"]["completedCount"]
    return count


@contextmanager
def served(database_url: str, tmp_path: Path, fake: FakeOpenAI, **extra: str) -> Iterator[Served]:
    """A server generating through the fake OpenAI, and a signed-up user with a frame."""
    env = {
        "DATABASE_URL": database_url,
        "OPENAI_API_KEY": fake.api_key,
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_PARTIAL_IMAGES": "2",
        **extra,
    }
    with running_server(tmp_path / "data", tmp_path / "server.log", **env) as (server, client):
        token = sign_up_over_http(client, "subscriber@storyframe.test")
        project = graphql(client, CREATE_PROJECT, {"name": "P"})["createProject"]["project"]
        video = graphql(client, CREATE_VIDEO, {"projectId": project["id"], "name": "V"})
        video_id = video["createVideo"]["video"]["id"]
        frame = graphql(client, CREATE_FRAME, {"videoId": video_id, "title": "Shot"})
        yield Served(client, server.base_url, token, video_id, frame["createFrame"]["frame"]["id"])


async def test_a_subscriber_sees_previews_then_each_stored_image_then_the_end(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    hold = fake_openai.hold_stream(1)  # each stream stops after its first partial
    with served(database_url, tmp_path, fake_openai) as app:
        # given a generation of two images, both calls held after one preview
        generation_id = app.generate(imageCount=2)
        async with subscriptions(app.base_url, app.token) as ws:
            operation = await ws.subscribe(GENERATION_UPDATED, {"id": generation_id})
            events = ws.events(operation)
            seen: list[dict[str, Any]] = []
            # the state as it stands comes first
            first = (await anext(events))["generationUpdated"]
            assert first["kind"] == "STATE"
            assert first["generation"]["id"] == generation_id
            seen.append(first)
            # then at least one preview of each image, while both calls are still held
            while {e["index"] for e in seen if e["kind"] == "PREVIEW"} != {0, 1}:
                seen.append((await anext(events))["generationUpdated"])
            assert not [e for e in seen if e["kind"] == "IMAGE_STORED"]

            # when the calls go on
            hold.release()

            # then each stored image's URL answers when its event arrives, and FINISHED is last
            async for data in events:
                event = data["generationUpdated"]
                seen.append(event)
                if event["kind"] == "IMAGE_STORED":
                    response = app.client.get(event["image"]["url"])
                    assert response.status_code == 200
                    assert response.headers["content-type"].startswith("image/")

    kinds = [event["kind"] for event in seen]
    assert kinds[-1] == "FINISHED"
    assert seen[-1]["generation"]["status"] == "SUCCEEDED"
    assert seen[-1]["generation"]["completedCount"] == 2
    for index in (0, 1):
        mine = [e for e in seen if e["index"] == index]
        assert [e["kind"] for e in mine][-1] == "IMAGE_STORED"
        assert {e["kind"] for e in mine[:-1]} == {"PREVIEW"}
        previews = [e["preview"] for e in mine[:-1]]
        assert [p["sequence"] for p in previews] == list(range(len(previews)))
        assert all(p["url"].startswith("data:image/jpeg;base64,") for p in previews)
        assert all(max(p["width"], p["height"]) <= 512 for p in previews)


async def test_a_late_subscriber_sees_the_current_state_first(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.hold_stream(0, 2)  # the second image's call holds; the first is stored
    with served(database_url, tmp_path, fake_openai) as app:
        generation_id = app.generate(imageCount=2)
        await until(lambda: _completed(app, generation_id) > 0, 60)  # the first image is in
        async with subscriptions(app.base_url, app.token) as ws:
            # when someone subscribes now
            operation = await ws.subscribe(GENERATION_UPDATED, {"id": generation_id})
            first = (await anext(ws.events(operation)))["generationUpdated"]

            # then the first event is the generation as it stands: running, one image in
            assert (first["kind"], first["generation"]["status"]) == ("STATE", "RUNNING")
            assert first["generation"]["completedCount"] == 1
            fake_openai.resume()


async def test_a_subscription_to_an_ended_generation_gives_its_state_and_completes(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    with served(database_url, tmp_path, fake_openai) as app:
        generation_id = app.generate(wait=True)
        async with subscriptions(app.base_url, app.token) as ws:
            operation = await ws.subscribe(GENERATION_UPDATED, {"id": generation_id})
            events = [data["generationUpdated"] async for data in ws.events(operation)]

    assert [(e["kind"], e["generation"]["status"]) for e in events] == [("STATE", "SUCCEEDED")]


async def test_another_users_generation_cannot_be_followed(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    with served(database_url, tmp_path, fake_openai) as app:
        generation_id = app.generate(wait=True)
        stranger = sign_up_over_http(app.client, "stranger@storyframe.test")
        async with subscriptions(app.base_url, stranger) as ws:
            operation = await ws.subscribe(GENERATION_UPDATED, {"id": generation_id})
            message = await ws.message()

    assert message["id"] == operation
    assert message["type"] == "next"
    [error] = message["payload"]["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_a_video_subscription_sees_every_generation_of_the_video(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    with served(database_url, tmp_path, fake_openai) as app:
        async with subscriptions(app.base_url, app.token) as ws:
            operation = await ws.subscribe(VIDEO_GENERATIONS_UPDATED, {"id": app.video_id})
            first, second = app.generate(), app.generate()
            finished: set[str] = set()
            events = ws.events(operation)
            while finished != {first, second}:
                event = (await anext(events))["videoGenerationsUpdated"]
                if event["kind"] == "FINISHED":
                    finished.add(event["generation"]["id"])
            await ws.stop(operation)


async def test_cancelling_a_running_generation_ends_it_and_keeps_what_was_stored(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.hold_stream(0, 2)  # the second image's call holds; the first is stored
    with served(database_url, tmp_path, fake_openai) as app:
        generation_id = app.generate(imageCount=2)
        async with subscriptions(app.base_url, app.token) as ws:
            operation = await ws.subscribe(GENERATION_UPDATED, {"id": generation_id})
            events = ws.events(operation)
            kinds: list[str] = []
            while "IMAGE_STORED" not in kinds:
                kinds.append((await anext(events))["generationUpdated"]["kind"])

            # when
            answer = graphql(app.client, CANCEL, {"id": generation_id})["cancelGeneration"]

            # then it is asked at once, and ends PARTIAL with the image it stored
            assert answer["userErrors"] == []
            assert answer["generation"]["cancelRequested"] is True
            rest = [data["generationUpdated"] async for data in events]
        again = graphql(app.client, CANCEL, {"id": generation_id})["cancelGeneration"]

    assert rest[-1]["kind"] == "FINISHED"
    assert (rest[-1]["generation"]["status"], rest[-1]["generation"]["completedCount"]) == (
        "PARTIAL",
        1,
    )
    assert again["userErrors"][0]["code"] == "INVALID"


async def test_a_connection_holds_a_bounded_number_of_subscriptions(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    with served(database_url, tmp_path, fake_openai, MAX_SUBSCRIPTIONS_PER_CONNECTION="1") as app:
        async with subscriptions(app.base_url, app.token) as ws:
            first = await ws.subscribe(VIDEO_GENERATIONS_UPDATED, {"id": app.video_id})
            second = await ws.subscribe(VIDEO_GENERATIONS_UPDATED, {"id": app.video_id})
            refused = await ws.message()
            closed = await ws.message()
            await ws.stop(first)
            # once one ends, another may start
            third = await ws.subscribe(VIDEO_GENERATIONS_UPDATED, {"id": app.video_id})
            app.generate()
            accepted = await ws.message()

    assert refused["id"] == second
    [error] = refused["payload"]["errors"]
    assert error["extensions"]["code"] == "LIMIT_REACHED"
    assert closed == {"id": second, "type": "complete"}
    assert (accepted["id"], accepted["type"]) == (third, "next")
