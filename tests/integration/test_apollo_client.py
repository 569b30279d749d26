"""Apollo Client itself (tests/clients, Node.js) against the real server process: its
persisted-queries link registers a query once, then sends the hash alone, over POST or GET."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.documents import CREATE_PROJECT
from tests.support.servers import graphql, running_server, sign_up_over_http

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
SCRIPT = CLIENTS / "apollo_persisted_queries.mjs"
INSTALLED = CLIENTS / "node_modules" / ".installed-from"
GRAPHQL_RESPONSE = "application/graphql-response+json"
NPM_TIMEOUT = 600.0
CLIENT_TIMEOUT = 120.0


@pytest.fixture(scope="session")
def node() -> str:
    """Node.js, with tests/clients' packages installed as package-lock.json pins them."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "Node.js and npm are needed to run Apollo Client against the server"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI must run it")
        pytest.skip(message)
    _install(npm)
    return node


def _install(npm: str) -> None:
    """`npm ci` unless node_modules was installed from these very package files. Runs of the
    tests at the same time take turns (the lock file is held while installing)."""
    lock = CLIENTS / "package-lock.json"
    with lock.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        want = hashlib.sha256(held.read() + (CLIENTS / "package.json").read_bytes()).hexdigest()
        if INSTALLED.is_file() and INSTALLED.read_text() == want:
            return
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=CLIENTS,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        if installed.returncode != 0:
            pytest.fail(f"npm ci failed in {CLIENTS}:\n{installed.stdout}\n{installed.stderr}")
        INSTALLED.write_text(want)


def persisted_outcomes(log: str) -> list[tuple[str, str, str]]:
    """(outcome, HTTP method, hash) of each persisted query the server's JSON log reports."""
    outcomes = []
    for line in log.splitlines():
        try:
            entry: Any = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("logger") == "storyframe.persisted":
            outcomes.append((entry["persisted_query"], entry["method"], entry["sha256"]))
    return outcomes


@pytest.mark.parametrize(("mode", "hashed_method"), [("post", "POST"), ("get", "GET")])
def test_apollo_clients_persisted_query_link_sends_only_the_hash_once_registered(
    node: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    hashed_method: str,
) -> None:
    # the server reports each persisted query it looks up or registers
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    with running_server(tmp_path / "data", tmp_path / "server.log") as (server, client):
        token = sign_up_over_http(client, f"apollo-{mode}@storyframe.test")
        graphql(client, CREATE_PROJECT, {"name": "Persisted by Apollo"})

        ran = subprocess.run(
            [node, str(SCRIPT), f"{server.base_url}/graphql", mode],
            cwd=CLIENTS,
            env={**os.environ, "STORYFRAME_TOKEN": token},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            check=False,
        )
        assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n{server.output()}"
        outcomes = persisted_outcomes(server.output())
        assert server.terminate() == 0, server.output()

    report = json.loads(ran.stdout)
    # the same answer both times
    first, second = report["results"]
    assert first["projects"]["totalCount"] == 1
    assert [project["name"] for project in first["projects"]["nodes"]] == ["Persisted by Apollo"]
    assert second == first
    # the hash alone, unknown; then the document with it; then the hash alone, known
    requests = report["requests"]
    sent = [(r["method"], r["sentQuery"], r["status"], r["contentType"]) for r in requests]
    assert sent == [
        (hashed_method, False, 200, GRAPHQL_RESPONSE),
        ("POST", True, 200, GRAPHQL_RESPONSE),
        (hashed_method, False, 200, GRAPHQL_RESPONSE),
    ]
    (digest,) = {r["sha256Hash"] for r in requests}
    assert {r["accept"] for r in requests} == {f"{GRAPHQL_RESPONSE},application/json;q=0.9"}
    assert outcomes == [
        ("not_found", hashed_method, digest),
        ("registered", "POST", digest),
        ("hit", hashed_method, digest),
    ]
