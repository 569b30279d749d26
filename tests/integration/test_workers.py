"""`storyframe worker` processes run what API processes queue on PostgreSQL: a generation made
through `storyframe serve` (which runs none itself) is run by a worker; a worker killed with
SIGKILL mid-run leaves its generation to another, which asks again only for what was lost; a
worker stopped with SIGTERM hands its unfinished images back to the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from storyframe.db.engine import create_engine
from storyframe.db.migrate import upgrade
from tests.postgres import PostgresServer
from tests.support.documents import CREATE_FRAME, CREATE_PROJECT, CREATE_VIDEO
from tests.support.fake_openai import FakeOpenAI, fake_openai_fixture  # noqa: F401
from tests.support.ids import pk_of
from tests.support.servers import (
    Server,
    graphql,
    jobs_environment,
    running_server,
    running_worker,
    sign_up_over_http,
)
from tests.support.uploading import originals

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"])

FINAL = {"SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED"}
GENERATE = """
mutation($frameId: ID!, $count: Int!) {
  generateFrameImages(input: {frameId: $frameId, prompt: "owls", imageCount: $count}) {
    generation { id status }
    userErrors { code }
  }
}
"""
CANCEL = """
mutation($id: ID!) { cancelGeneration(input: {id: $id}) { userErrors { code } } }
"""
GENERATION = """
query($id: ID!) {
  node(id: $id) {
    ... on Generation {
      status completedCount attempts errors { index code }
      message { images { id url } }
    }
  }
}
"""


def _generation(client: httpx.Client, generation_id: str) -> dict[str, Any]:
    node: dict[str, Any] = graphql(client, GENERATION, {"id": generation_id})["node"]
    return node


async def _until(check: Any) -> None:
    for _ in range(1200):  # a generous bound for a loaded machine
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


def _env(database_url: str, fake_openai: FakeOpenAI, **extra: str) -> dict[str, str]:
    return jobs_environment(database_url, fake_openai.api_key, fake_openai.base_url, **extra)


@contextmanager
def _api(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[Server, httpx.Client, str]]:
    """An API process with a signed-up user and a frame of theirs."""
    with running_server(tmp_path / "data", tmp_path / "api.log", **env) as (server, client):
        sign_up_over_http(client, "worked@storyframe.test")
        project = graphql(client, CREATE_PROJECT, {"name": "P"})["createProject"]["project"]
        video = graphql(client, CREATE_VIDEO, {"projectId": project["id"], "name": "V"})
        frame = graphql(
            client, CREATE_FRAME, {"videoId": video["createVideo"]["video"]["id"], "title": "S"}
        )["createFrame"]["frame"]["id"]
        yield server, client, frame


def _generate(client: httpx.Client, frame: str, count: int) -> str:
    payload = graphql(client, GENERATE, {"frameId": frame, "count": count})["generateFrameImages"]
    assert payload["userErrors"] == []
    assert payload["generation"]["status"] == "QUEUED"
    generation_id: str = payload["generation"]["id"]
    return generation_id


async def test_a_worker_runs_what_an_api_process_queued(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    env = _env(database_url, fake_openai)
    with _api(tmp_path, env) as (server, client, frame):
        generation_id = _generate(client, frame, 2)
        # the API process runs nothing itself
        assert _generation(client, generation_id)["status"] == "QUEUED"

        with running_worker(
            tmp_path / "data", tmp_path / "worker.log", **env, PUBLIC_URL=server.base_url
        ) as worker:
            await _until(lambda: _generation(client, generation_id)["status"] in FINAL)
            finished = _generation(client, generation_id)
            # each stored image answers through the API process
            for image in finished["message"]["images"]:
                assert client.get(image["url"]).status_code == 200
            assert worker.terminate() == 0

    assert finished["status"] == "SUCCEEDED"
    assert finished["attempts"] == 1
    assert len(finished["message"]["images"]) == 2
    assert len(fake_openai.requests_to("images")) == 2
    assert "worker stopped" in worker.output()


async def test_a_killed_workers_generation_is_taken_over_and_asks_again_only_what_was_lost(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    env = _env(database_url, fake_openai)
    data = tmp_path / "data"
    hold = fake_openai.hold_stream(0, 2)  # the second image's call, until released
    with _api(tmp_path, env) as (_, client, frame):
        generation_id = _generate(client, frame, 2)
        with running_worker(data, tmp_path / "first.log", **env) as first:
            # given: one image stored, the other's call under way
            await _until(lambda: _generation(client, generation_id)["completedCount"] == 1)
            await asyncio.to_thread(hold.wait)
            # when the worker is killed
            first.kill()
        hold.release()
        calls_before = len(fake_openai.requests_to("images"))

        # then another worker takes it over once the first one's heartbeat is stale
        with running_worker(data, tmp_path / "second.log", **env):
            await _until(lambda: _generation(client, generation_id)["status"] in FINAL)
            finished = _generation(client, generation_id)

    assert finished["status"] == "SUCCEEDED"
    assert finished["attempts"] == 2
    assert len(finished["message"]["images"]) == 2
    assert calls_before == 2
    assert len(fake_openai.requests_to("images")) == 3  # only the lost image, once more
    assert len(originals(data / "media")) == 2


async def test_a_stopped_worker_hands_unfinished_images_back_for_the_next(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    env = _env(database_url, fake_openai)
    data = tmp_path / "data"
    hold = fake_openai.hold_stream(0, 2)
    with _api(tmp_path, env) as (_, client, frame):
        generation_id = _generate(client, frame, 2)
        with running_worker(data, tmp_path / "first.log", **env) as first:
            await _until(lambda: _generation(client, generation_id)["completedCount"] == 1)
            await asyncio.to_thread(hold.wait)
            # when the worker is told to stop while the second image is held past the grace
            assert first.terminate() == 0
        handed_back = _generation(client, generation_id)
        hold.release()

        with running_worker(data, tmp_path / "second.log", **env):
            await _until(lambda: _generation(client, generation_id)["status"] in FINAL)
            finished = _generation(client, generation_id)

    # it went back to the queue with its stored image kept
    assert handed_back["status"] == "QUEUED"
    assert handed_back["completedCount"] == 1
    assert finished["status"] == "SUCCEEDED"
    assert finished["attempts"] == 1  # handed back in good order: not a lost attempt
    assert len(finished["message"]["images"]) == 2
    assert len(fake_openai.requests_to("images")) == 3


async def test_a_worker_carries_on_after_the_database_restarts(
    dialect: str, own_postgres: PostgresServer, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    engine = create_engine(own_postgres.url)
    try:
        await upgrade(engine)
        async with engine.connect() as connection:  # what was written survives the restart
            await connection.execute(text("CHECKPOINT"))
    finally:
        await engine.dispose()
    env = _env(own_postgres.url, fake_openai)
    with (
        _api(tmp_path, env) as (server, client, frame),
        running_worker(
            tmp_path / "data", tmp_path / "worker.log", **env, PUBLIC_URL=server.base_url
        ) as worker,
    ):
        before = _generate(client, frame, 1)
        await _until(lambda: _generation(client, before)["status"] in FINAL)

        # when the database restarts under the API process and the worker
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.to_thread(own_postgres.start)

        # then a generation queued afterwards is run all the same
        after = await _once_answered(lambda: _generate(client, frame, 1))
        await _until(lambda: _generation(client, after)["status"] in FINAL)
        finished = _generation(client, after)
        assert worker.terminate() == 0

    assert dialect == "postgresql"
    assert finished["status"] == "SUCCEEDED"
    assert "the worker lost the task queue; connecting again" in worker.output()


async def _once_answered(ask: Any) -> Any:
    """What `ask()` answers once the API process is back (a request on a connection the
    restart cut may be refused once)."""
    for _ in range(100):
        try:
            return await asyncio.to_thread(ask)
        except AssertionError:
            await asyncio.sleep(0.1)
    return await asyncio.to_thread(ask)


async def test_cancelling_reaches_the_worker_running_it_at_once(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # given a worker whose heartbeat would not come within the test
    env = _env(database_url, fake_openai, GENERATION_HEARTBEAT_SECONDS="3600")
    hold = fake_openai.hold_stream(0, 2)  # the second image's call, until released
    with _api(tmp_path, env) as (server, client, frame):
        generation_id = _generate(client, frame, 2)
        with running_worker(
            tmp_path / "data", tmp_path / "worker.log", **env, PUBLIC_URL=server.base_url
        ):
            await _until(lambda: _generation(client, generation_id)["completedCount"] == 1)
            await asyncio.to_thread(hold.wait)

            # when its cancelling is asked through the API process
            cancel = graphql(client, CANCEL, {"id": generation_id})["cancelGeneration"]
            assert cancel["userErrors"] == []

            # then the worker stops it: it ends with the image it had stored
            await _until(lambda: _generation(client, generation_id)["status"] in FINAL)
            finished = _generation(client, generation_id)
        hold.release()

    assert finished["status"] == "PARTIAL"
    assert finished["completedCount"] == 1
    assert [e["code"] for e in finished["errors"]] == ["CANCELLED"]


async def test_a_generation_waiting_out_a_rate_limit_lends_its_slot(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # given one running slot in the deployment, and OpenAI asking the first call to wait long
    env = _env(
        database_url,
        fake_openai,
        GENERATION_RUNNING_TOTAL="1",
        OPENAI_MAX_RETRY_WAIT_SECONDS="600",
    )
    fake_openai.fail(
        "images",
        status=429,
        code="rate_limit_exceeded",
        type="requests",
        message="Rate limit reached for images per minute.",
        headers={"Retry-After": "600"},
    )
    with _api(tmp_path, env) as (server, client, frame):
        waiting = _generate(client, frame, 1)
        behind = _generate(client, frame, 1)
        with running_worker(
            tmp_path / "data", tmp_path / "worker.log", **env, PUBLIC_URL=server.base_url
        ):
            # when the first waits out its rate limit, the one behind it takes the slot
            await _until(lambda: _generation(client, behind)["status"] in FINAL)
            assert _generation(client, waiting)["status"] == "RUNNING"

            # and cancelled meanwhile, the waiting one ends
            cancel = graphql(client, CANCEL, {"id": waiting})["cancelGeneration"]
            assert cancel["userErrors"] == []
            await _until(lambda: _generation(client, waiting)["status"] in FINAL)
            stopped = _generation(client, waiting)

    assert stopped["status"] == "CANCELLED"
    assert [r.status for r in fake_openai.requests_to("images")] == [429, 200]


async def test_a_job_whose_generation_another_process_runs_waits_for_it_to_end(
    database_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    env = _env(database_url, fake_openai)
    engine = create_engine(database_url)

    async def sql(statement: str, **values: Any) -> Any:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), values)
            return result.first() if result.returns_rows else None

    job = "SELECT attempts FROM pgqueuer WHERE dedupe_key = :key"
    try:
        with _api(tmp_path, env) as (server, client, frame):
            generation_id = _generate(client, frame, 1)
            pk = pk_of(generation_id)
            # given: another process runs it (and says so), while its job is free to take, as
            # when that process's heartbeat to the task queue came late
            await sql(
                "UPDATE generations SET status = 'RUNNING', attempts = 1,"
                " heartbeat_at = now() + interval '1 hour' WHERE id = :id",
                id=pk,
            )
            with running_worker(
                tmp_path / "data", tmp_path / "worker.log", **env, PUBLIC_URL=server.base_url
            ):
                # when a worker takes the job: it is refused the start, and the job stays
                async def retried() -> bool:
                    row = await sql(job, key=f"generation:{pk}")
                    return row is not None and row[0] >= 1

                await _until_async(retried)
                assert (await sql("SELECT status FROM generations WHERE id = :id", id=pk))[
                    0
                ] == "RUNNING"

                # then once the other process has finished it, the job ends
                await sql("UPDATE generations SET status = 'SUCCEEDED' WHERE id = :id", id=pk)

                async def ended() -> bool:
                    return await sql(job, key=f"generation:{pk}") is None

                await _until_async(ended)
    finally:
        await engine.dispose()
    assert fake_openai.requests_to("images") == []


async def _until_async(check: Any) -> None:
    for _ in range(1200):  # a generous bound for a loaded machine
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")
