"""`storyframe` itself in a process of its own: its commands run to their end, and `storyframe
serve` on a free loopback port with a client of it."""

from __future__ import annotations

import os
import random
import signal
import socket
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

from tests.support.documents import SIGN_UP

STORYFRAME = Path(sys.executable).parent / "storyframe"
# Generous bounds for a loaded machine; reached only when something is wrong.
STARTUP_ATTEMPTS = 600  # x 0.05 s
STOP_TIMEOUT = 60.0


# Below the ports Linux gives to the local ends of connections (32768 and up), so a port found
# free here is not taken by a connection, nor by bind(0), before the server listens on it; each
# pytest-xdist worker picks from a slice of its own.
SERVER_PORTS = range(20000, 32000)


def free_port() -> int:
    """A loopback port nothing is bound to, for a server started in another process."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = len(SERVER_PORTS) // workers
    mine = SERVER_PORTS[worker * size : (worker + 1) * size]
    for port in random.sample(mine, len(mine)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {mine}")


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
class Process:
    """A `storyframe` command running in a process of its own, its output in `log`."""

    process: subprocess.Popen[bytes]
    log: Path
    name = "the process"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self) -> int:
        """SIGTERM, then wait (bounded) for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"{self.name} did not stop on SIGTERM:\n{self.output()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def check_running(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")


@dataclass
class Server(Process):
    base_url: str = ""
    name = "the server"

    def wait_until_healthy(self, client: httpx.Client) -> None:
        for _ in range(STARTUP_ATTEMPTS):
            self.check_running()
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"the server never became healthy:\n{self.output()}")


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
    server = Server(process, log, f"http://127.0.0.1:{port}")
    try:
        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            server.wait_until_healthy(client)
            yield server, client
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass
class WorkerProcess(Process):
    name = "the worker"

    def wait_until_ready(self) -> None:
        for _ in range(STARTUP_ATTEMPTS):
            self.check_running()
            if "worker ready" in self.output():
                return
            time.sleep(0.05)
        pytest.fail(f"the worker never became ready:\n{self.output()}")


@contextmanager
def running_worker(data_dir: Path, log: Path, **env: str) -> Iterator[WorkerProcess]:
    """`storyframe worker` with `data_dir` (and `env`), ready; killed afterwards if still
    running."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(STORYFRAME), "worker"],
            env=server_environment(data_dir, free_port(), **env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, log)
    try:
        worker.wait_until_ready()
        yield worker
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def jobs_environment(
    database_url: str, openai_key: str, openai_url: str, **extra: str
) -> dict[str, str]:
    """What API processes that leave generations to workers, and their workers, take: quick
    heartbeats and a short grace, so that taking over and handing back happen within a test."""
    return {
        "DATABASE_URL": database_url,
        "OPENAI_API_KEY": openai_key,
        "OPENAI_BASE_URL": openai_url,
        "GENERATION_JOBS_IN_PROCESS": "false",
        "GENERATION_HEARTBEAT_SECONDS": "0.5",
        "GENERATION_SHUTDOWN_GRACE_SECONDS": "0.5",
        **extra,
    }


def sign_up_over_http(client: httpx.Client, email: str) -> str:
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
