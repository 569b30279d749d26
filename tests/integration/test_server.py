"""The real server process (`storyframe serve`), `storyframe migrate`, and readiness probes."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sqlite3
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from storyframe.db.engine import create_engine
from storyframe.db.migrate import alembic_config
from storyframe.db.queue_schema import QUEUE_TABLES, ours
from tests.integration.databases import fresh_postgres_database
from tests.support.apps import app_with, settings_for
from tests.support.clients import http_client
from tests.support.documents import CREATE_FRAME, CREATE_PROJECT, CREATE_VIDEO
from tests.support.servers import (
    STOP_TIMEOUT,
    STORYFRAME,
    free_port,
    graphql,
    run_storyframe,
    running_server,
    server_environment,
    sign_up_over_http,
)

MODEL_TABLES = {table.name for table in SQLModel.metadata.sorted_tables}
PROJECT_NAME = """query($id: ID!) { project(id: $id) { name } }"""


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def sqlite_schema(path: Path) -> tuple[set[str], str | None]:
    """(tables, Alembic revision) of a SQLite file."""
    with sqlite3.connect(path) as connection:
        tables = {
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    connection.close()
    return tables, revision[0] if revision else None


def test_serve_creates_migrates_and_serves_an_empty_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # does not exist yet
    assert not data_dir.exists()

    with running_server(data_dir, tmp_path / "server.log") as (server, client):
        database = data_dir / "storyframe.db"
        assert database.is_file()
        tables, revision = sqlite_schema(database)
        assert tables >= MODEL_TABLES | {"alembic_version"}
        assert revision == head_revision()

        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ok"}

        sign_up_over_http(client, "first@storyframe.test")
        payload = graphql(client, CREATE_PROJECT, {"name": "Over HTTP"})["createProject"]
        assert payload["userErrors"] == []
        assert payload["project"]["name"] == "Over HTTP"
        project = graphql(client, PROJECT_NAME, {"id": payload["project"]["id"]})["project"]
        assert project == {"name": "Over HTTP"}

        ide = client.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 200
        assert ide.headers["content-type"].startswith("text/html")
        assert "graphiql" in ide.text.lower()

        assert server.terminate() == 0, server.output()


def test_serve_keeps_an_existing_database_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    with running_server(data_dir, log) as (server, client):
        token = sign_up_over_http(client, "kept@storyframe.test")
        payload = graphql(client, CREATE_PROJECT, {"name": "Kept"})["createProject"]
        assert server.terminate() == 0, server.output()

    with running_server(data_dir, log) as (server, client):
        client.headers["Authorization"] = f"Bearer {token}"
        project = graphql(client, PROJECT_NAME, {"id": payload["project"]["id"]})["project"]
        assert project == {"name": "Kept"}
        assert server.terminate() == 0, server.output()


def test_serve_stops_cleanly_on_sigterm_while_idle(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", tmp_path / "server.log") as (server, _):
        assert server.terminate() == 0, server.output()
        assert "Traceback" not in server.output()


def test_serve_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", tmp_path / "server.log") as (server, _):
        server.process.send_signal(signal.SIGINT)  # Ctrl-C in a terminal
        assert server.process.wait(timeout=STOP_TIMEOUT) == 0, server.output()
        assert "Traceback" not in server.output()


def refused_serve(data_dir: Path, port: int, *args: str) -> str:
    """The one line `storyframe serve` says when it cannot listen; it exits 1 having announced
    and done nothing."""
    status, output = run_storyframe(server_environment(data_dir, port), "serve", *args)
    assert status == 1, output
    assert "serving on" not in output
    assert not data_dir.exists()
    (line,) = output.splitlines()
    return line


def test_serve_refuses_a_port_in_use_before_announcing_anything(tmp_path: Path) -> None:
    with socket.socket() as other_server:
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        port = other_server.getsockname()[1]
        line = refused_serve(tmp_path / "data", port)
    assert f"port {port} on 127.0.0.1 is in use; set PORT or stop the other server" in line


def test_serve_refuses_an_address_not_of_this_machine(tmp_path: Path) -> None:
    port = free_port()
    line = refused_serve(tmp_path / "data", port, "--host", "192.0.2.1")  # TEST-NET-1
    assert f"cannot listen on 192.0.2.1 port {port}: Cannot assign requested address" in line


GENERATE = """
mutation($frameId: ID!) {
  generateFrameImages(
    input: {frameId: $frameId, prompt: "the keeper climbs", imageCount: 2, wait: true}
  ) {
    generation { status } userErrors { code }
  }
}
"""


def test_serve_logs_a_generation_with_its_fields_on_the_console(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with running_server(tmp_path / "data", log, LOG_FORMAT="console") as (server, client):
        sign_up_over_http(client, "console@storyframe.test")
        project = graphql(client, CREATE_PROJECT, {"name": "Logged"})["createProject"]
        video = graphql(client, CREATE_VIDEO, {"projectId": project["project"]["id"], "name": "V"})
        video_id = video["createVideo"]["video"]["id"]
        frame = graphql(client, CREATE_FRAME, {"videoId": video_id, "title": "Opening"})
        frame_id = frame["createFrame"]["frame"]["id"]
        generated = graphql(client, GENERATE, {"frameId": frame_id})["generateFrameImages"]
        assert generated["generation"]["status"] == "SUCCEEDED", generated
        assert server.terminate() == 0, server.output()  # every line is written by then

    output = server.output()
    (line,) = [line for line in output.splitlines() if "generation finished" in line]
    assert "storyframe.generation" in line
    for field in ("status=SUCCEEDED", "requested=2", "completed=2", "failed=0", "chat=frame"):
        assert field in line, line
    for field in ("generation_id=", "model=", "duration_ms=", "estimated_cost_usd="):
        assert field in line, line
    assert output.count("serving on") == 1  # uvicorn does not announce the address again
    assert "alembic" not in output


def test_migrate_logs_one_line_of_its_own_and_nothing_of_alembic(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data", free_port(), LOG_FORMAT="json")

    def migrate() -> list[dict[str, Any]]:
        status, output = run_storyframe(env, "migrate")
        assert status == 0, output
        assert "alembic" not in output
        return [json.loads(line) for line in output.splitlines()]

    (first,) = migrate()
    assert (first["logger"], first["message"]) == ("storyframe", "database migrated")
    assert (first["from_revision"], first["to_revision"]) == (None, head_revision())
    (again,) = migrate()
    assert (again["message"], again["revision"]) == ("database schema is current", head_revision())


def _postgres_schema(connection: Connection) -> tuple[set[str], str | None, list[Any]]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": ours}
    )
    tables = set(inspect(connection).get_table_names())
    return tables, context.get_current_revision(), compare_metadata(context, SQLModel.metadata)


async def test_migrate_command_applies_the_migrations_to_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    async with fresh_postgres_database(postgres_url) as url:
        env = server_environment(tmp_path / "data", free_port(), DATABASE_URL=url)
        process = await asyncio.create_subprocess_exec(
            str(STORYFRAME),
            "migrate",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), STOP_TIMEOUT)
        assert process.returncode == 0, output.decode(errors="replace")

        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                tables, revision, differences = await connection.run_sync(_postgres_schema)
        finally:
            await engine.dispose()
    # with the task queue's tables, for `storyframe worker`
    assert tables == MODEL_TABLES | QUEUE_TABLES | {"alembic_version"}
    assert revision == head_revision()
    assert differences == []
    # Nothing of SQLite's default was created: the URL was used.
    assert not (tmp_path / "data" / "storyframe.db").exists()


async def test_readyz_answers_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens on it once the probe socket is closed
    settings = settings_for(f"postgresql://postgres@127.0.0.1:{closed}/x", tmp_path / "data")
    async with app_with(settings) as app, http_client(app) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")

    assert health.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert "Traceback" not in ready.text
    assert 'File "' not in ready.text
    assert str(closed) not in ready.text  # no connection details leak either


def test_a_worker_needs_postgresql(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data", free_port())

    status, output = run_storyframe(env, "worker")

    assert status == 2
    assert "storyframe worker needs PostgreSQL" in output
    assert "Traceback" not in output


async def test_a_worker_refuses_a_database_not_migrated(postgres_url: str, tmp_path: Path) -> None:
    async with fresh_postgres_database(postgres_url) as url:
        env = server_environment(tmp_path / "data", free_port(), DATABASE_URL=url)
        status, output = await asyncio.to_thread(run_storyframe, env, "worker")

    assert status == 1
    assert "run `storyframe migrate` first" in output
    assert "Traceback" not in output
