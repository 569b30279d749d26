"""Nothing accepted is lost when the process running it dies: `storyframe serve` killed with
SIGKILL in the middle of a generation, then started again on the same database. The fake OpenAI
holds the second image's call while the first is stored, so the kill lands between the two."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from tests.support.documents import CREATE_FRAME, CREATE_PROJECT, CREATE_VIDEO
from tests.support.fake_openai import FakeOpenAI, fake_openai_fixture  # noqa: F401
from tests.support.servers import graphql, running_server, sign_up_over_http
from tests.support.uploading import originals

FINAL = {"SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED"}
GENERATE = """
mutation($frameId: ID!) {
  generateFrameImages(input: {frameId: $frameId, prompt: "owls", imageCount: 2}) {
    generation { id status }
    userErrors { code }
  }
}
"""
GENERATION = """
query($id: ID!) {
  node(id: $id) {
    ... on Generation {
      status completedCount attempts errors { index code }
      message { images { id } }
    }
  }
}
"""


def _generation(client: Any, generation_id: str) -> dict[str, Any]:
    node: dict[str, Any] = graphql(client, GENERATION, {"id": generation_id})["node"]
    return node


async def _until(check: Any) -> None:
    for _ in range(1200):  # a generous bound for a loaded machine
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


async def test_a_generation_whose_process_was_killed_resumes_and_asks_again_only_what_was_lost(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "OPENAI_API_KEY": fake_openai.api_key,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "GENERATION_HEARTBEAT_SECONDS": "0.5",
    }
    data = tmp_path / "data"
    hold = fake_openai.hold_stream(0, 2)  # the second image's call, until released
    with running_server(data, tmp_path / "first.log", **env) as (server, client):
        token = sign_up_over_http(client, "survivor@storyframe.test")
        project = graphql(client, CREATE_PROJECT, {"name": "P"})["createProject"]["project"]
        video = graphql(client, CREATE_VIDEO, {"projectId": project["id"], "name": "V"})
        frame = graphql(
            client, CREATE_FRAME, {"videoId": video["createVideo"]["video"]["id"], "title": "S"}
        )["createFrame"]["frame"]["id"]
        generation_id = graphql(client, GENERATE, {"frameId": frame})["generateFrameImages"][
            "generation"
        ]["id"]
        # given: one image stored, the other's call under way
        await _until(lambda: _generation(client, generation_id)["completedCount"] == 1)
        await asyncio.to_thread(hold.wait)

        # when the process is killed
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
    hold.release()
    calls_before = len(fake_openai.requests_to("images"))

    # then a new process on the same database finishes it
    with running_server(data, tmp_path / "second.log", **env) as (_, client):
        client.headers["Authorization"] = f"Bearer {token}"
        await _until(lambda: _generation(client, generation_id)["status"] in FINAL)
        finished = _generation(client, generation_id)

    assert finished["status"] == "SUCCEEDED"
    assert finished["attempts"] == 2
    assert finished["completedCount"] == 2
    assert len(finished["message"]["images"]) == 2
    # only the image lost with the process was asked for again
    assert calls_before == 2
    assert len(fake_openai.requests_to("images")) == 3
    assert len(originals(data / "media")) == 2
