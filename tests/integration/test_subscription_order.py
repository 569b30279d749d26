"""A generation's QUEUED event comes from the API process that queued it, its other events from
the process that runs it: with workers, QUEUED may arrive after the worker's first events. A
subscriber that has heard a generation start is not told it is queued afterwards.

The app runs in a TestClient (its own event loop and thread), with no runner of its own, so the
test is the only one to publish the generation's events, in the order it chooses."""

from __future__ import annotations

import warnings
from typing import Any

from sqlalchemy import text
from starlette.exceptions import StarletteDeprecationWarning

from storyframe.domain.jobs import EventKind, GenerationEvent
from storyframe.runtime import Runtime
from storyframe.settings import Settings
from tests.support.apps import build_app
from tests.support.documents import CREATE_FRAME, CREATE_PROJECT, CREATE_VIDEO, SIGN_UP
from tests.support.ids import pk_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

FOLLOW = "subscription($id: ID!) { generationUpdated(id: $id) { kind } }"
GENERATE = """
mutation($frameId: ID!) {
  generateFrameImages(input: {frameId: $frameId, prompt: "owls"}) { generation { id } }
}
"""


def _data(client: TestClient, token: str | None, query: str, variables: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"query": query, "variables": variables}
    response = client.post("/graphql", json=body, headers=headers)
    answer = response.json()
    assert "errors" not in answer, answer
    return answer["data"]


def test_a_late_queued_event_is_not_sent_after_the_generation_started(settings: Settings) -> None:
    app = build_app(settings, generation_jobs_in_process=False)
    with TestClient(app) as client:
        credentials = {"email": "order@storyframe.test", "password": "a long and quiet river"}
        token = _data(client, None, SIGN_UP, {"input": credentials})["signUp"]["token"]
        project = _data(client, token, CREATE_PROJECT, {"name": "P"})["createProject"]["project"]
        video = _data(client, token, CREATE_VIDEO, {"projectId": project["id"], "name": "V"})
        video_id = video["createVideo"]["video"]["id"]
        frame = _data(client, token, CREATE_FRAME, {"videoId": video_id, "title": "S"})
        frame_id = frame["createFrame"]["frame"]["id"]
        generation = _data(client, token, GENERATE, {"frameId": frame_id})
        generation_id = generation["generateFrameImages"]["generation"]["id"]
        runtime: Runtime = app.state.runtime
        owner = pk_of(_data(client, token, "{ viewer { id } }", {})["viewer"]["id"])

        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            init = {"Authorization": f"Bearer {token}"}
            ws.send_json({"type": "connection_init", "payload": init})
            assert ws.receive_json()["type"] == "connection_ack"
            follow = {"query": FOLLOW, "variables": {"id": generation_id}}
            ws.send_json({"id": "1", "type": "subscribe", "payload": follow})
            assert ws.receive_json()["payload"]["data"]["generationUpdated"]["kind"] == "STATE"

            assert client.portal is not None

            def publish(kind: EventKind, status: str) -> None:
                assert client.portal is not None
                client.portal.call(_set_status, runtime, pk_of(generation_id), status)
                event = GenerationEvent(kind, pk_of(generation_id), pk_of(video_id), owner)
                client.portal.call(runtime.events.publish, event)

            # when the worker's first event arrives before the API process's QUEUED
            publish(EventKind.STARTED, "RUNNING")
            publish(EventKind.QUEUED, "RUNNING")
            # and later the worker hands it back to the queue, then it ends
            publish(EventKind.QUEUED, "QUEUED")
            publish(EventKind.FINISHED, "SUCCEEDED")
            kinds = [ws.receive_json() for _ in range(4)]

    # then the subscriber hears it started, was handed back and finished, not the late QUEUED
    assert [m["payload"]["data"]["generationUpdated"]["kind"] for m in kinds[:3]] == [
        "STARTED",
        "QUEUED",
        "FINISHED",
    ]
    assert kinds[3]["type"] == "complete"


async def _set_status(runtime: Runtime, generation_id: int, status: str) -> None:
    async with runtime.engine.begin() as connection:
        await connection.execute(
            text("UPDATE generations SET status = :status WHERE id = :id"),
            {"status": status, "id": generation_id},
        )
