"""The real server process (`storyframe serve`), `storyframe migrate`, and readiness probes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from storyframe.app import create_app
from storyframe.db.engine import create_engine
from storyframe.db.migrate import alembic_config
from storyframe.settings import Settings
from tests.integration.databases import fresh_postgres_database
from tests.integration.helpers import CREATE_FRAME, CREATE_VIDEO

STORYFRAME = Path(sys.executable).parent / "storyframe"
MODEL_TABLES = {table.name for table in SQLModel.metadata.sorted_tables}
CREATE_PROJECT = """
mutation($name: String!) {
  createProject(input: {name: $name}) { project { id name } userErrors { code message } }
}
"""
PROJECT_NAME = """query($id: ID!) { project(id: $id) { name } }"""
# Generous bounds for a loaded machine; reached only when something is wrong.
STARTUP_ATTEMPTS = 600  # x 0.05 s
STOP_TIMEOUT = 60.0


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """The test's environment without a database URL, plus what the server must use."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.pop("OPENAI_API_KEY", None)
    env.update(
        STORYFRAME_DATA_DIR=str(data_dir),
        HOST="127.0.0.1",
        PORT=str(port),
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_KIB="1024",
        **extra,
    )
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_healthy(self, client: httpx.Client) -> None:
        for _ in range(STARTUP_ATTEMPTS):
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"the server never became healthy:\n{self.output()}")

    def terminate(self) -> int:
        """SIGTERM, then wait (bounded) for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the server did not stop on SIGTERM:\n{self.output()}")


@contextmanager
def running_server(data_dir: Path, log: Path, **env: str) -> Iterator[tuple[Server, httpx.Client]]:
    """`storyframe serve` on a free port with `data_dir` (and `env`); killed afterwards if still
    running."""
    port = free_port()
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(STORYFRAME), "serve"],
            env=server_environment(data_dir, port, **env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            server.wait_until_healthy(client)
            yield server, client
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


SIGN_UP = """
mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) { token userErrors { code } }
}
"""


def sign_up(client: httpx.Client, email: str) -> str:
    """Sign up over HTTP; the client sends the new token from then on."""
    variables = {"input": {"email": email, "password": "served over plain http"}}
    payload = graphql(client, SIGN_UP, variables)["signUp"]
    assert payload["userErrors"] == []
    token: str = payload["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return token


def graphql(client: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


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

        sign_up(client, "first@storyframe.test")
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
        token = sign_up(client, "kept@storyframe.test")
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


def run_storyframe(env: dict[str, str], *args: str) -> tuple[int, str]:
    """A `storyframe` command run to its end: its exit status and all it printed."""
    result = subprocess.run(
        [str(STORYFRAME), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=STOP_TIMEOUT,
        check=False,
    )
    return result.returncode, result.stdout.decode(errors="replace")


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
  generateFrameImages(input: {frameId: $frameId, prompt: "the keeper climbs", imageCount: 2}) {
    generation { status } userErrors { code }
  }
}
"""


def test_serve_logs_a_generation_with_its_fields_on_the_console(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with running_server(tmp_path / "data", log, LOG_FORMAT="console") as (server, client):
        sign_up(client, "console@storyframe.test")
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
    context = MigrationContext.configure(connection, opts={"compare_type": True})
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
    assert tables == MODEL_TABLES | {"alembic_version"}
    assert revision == head_revision()
    assert differences == []
    # Nothing of SQLite's default was created: the URL was used.
    assert not (tmp_path / "data" / "storyframe.db").exists()


async def test_readyz_answers_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens on it once the probe socket is closed
    settings = Settings(
        database_url=f"postgresql://postgres@127.0.0.1:{closed}/x", data_dir=tmp_path / "data"
    )
    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://storyframe.test"
        ) as http:
            health = await http.get("/healthz")
            ready = await http.get("/readyz")
    finally:
        await app.state.runtime.engine.dispose()

    assert health.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert "Traceback" not in ready.text
    assert 'File "' not in ready.text
    assert str(closed) not in ready.text  # no connection details leak either
