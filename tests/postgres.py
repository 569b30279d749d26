"""Throwaway PostgreSQL servers for the tests, started with Debian's postgresql tools.

PostgreSQL refuses to run as root, so under root the server runs as the `postgres` user. Set
STORYFRAME_TEST_POSTGRES_URL to use a server of your own for the session instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_ATTEMPTS = 3


class PostgresUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise PostgresUnavailable(f"`{name}` not found: install PostgreSQL (Debian: postgresql-15)")


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run(command: list[str]) -> None:
    subprocess.run(_as_server_user(command), check=True, capture_output=True, text=True)


class PostgresServer:
    """A PostgreSQL server of one's own, in a temporary directory: it can be stopped and
    started again (on the same port) to see what its clients do meanwhile."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.port = 0

    @property
    def url(self) -> str:
        """The URL of the server's `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = str(self.root / "log")
        _run([_tool("pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends its connections as an orderly shutdown does,
        `immediate` as a crash would."""
        _run([_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])


@contextmanager
def own_postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server, running; stopped and removed afterwards."""
    initdb = _tool("initdb")
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="storyframe-pg-")))
    server.sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(server.root, "postgres")
        shutil.chown(server.sockets, "postgres")
    try:
        _run([initdb, "-D", str(server.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        for attempt in range(START_ATTEMPTS):
            # the port was free a moment ago; another process may take it first
            server.port = _free_port()
            try:
                server.start()
                break
            except subprocess.CalledProcessError:
                if attempt == START_ATTEMPTS - 1:
                    raise
    except subprocess.CalledProcessError as error:
        shutil.rmtree(server.root, ignore_errors=True)
        raise PostgresUnavailable(f"PostgreSQL did not start: {error.stderr}") from error
    try:
        yield server
    finally:
        subprocess.run(
            _as_server_user(
                [_tool("pg_ctl"), "-D", str(server.data), "-m", "immediate", "-w", "stop"]
            ),
            capture_output=True,
        )
        shutil.rmtree(server.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a fresh PostgreSQL server's `postgres` database (or of the server
    STORYFRAME_TEST_POSTGRES_URL names); stop it afterwards."""
    given = os.environ.get("STORYFRAME_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    with own_postgres_server() as server:
        yield server.url
