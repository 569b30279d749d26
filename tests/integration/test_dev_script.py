"""`./dev` sets up .venv before serving and says so on stderr while it works.

The real script runs on a copy of what it reads, with a stand-in interpreter: `-m venv DIR` makes
DIR with a `storyframe` that echoes its arguments, and every call is recorded, so nothing is
installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$FAKE_PYTHON_CALLS"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"
    cp "$0" "$3/bin/python"
    printf '#!/bin/sh\\necho "storyframe $*"\\n' > "$3/bin/storyframe"
    chmod +x "$3/bin/storyframe"
fi
"""


@dataclass
class Checkout:
    root: Path
    calls: Path
    python: Path

    def serve(self) -> tuple[str, str]:
        """(stdout, stderr) of `./dev serve --port 4100`, run from elsewhere."""
        env = {**os.environ, "PYTHON": str(self.python), "FAKE_PYTHON_CALLS": str(self.calls)}
        result = subprocess.run(
            [str(self.root / "dev"), "serve", "--port", "4100"],
            cwd=self.root.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout, result.stderr

    def recorded(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    root = tmp_path / "storyframe"
    root.mkdir()
    shutil.copy2(ROOT / "dev", root / "dev")
    (root / "requirements.lock").write_text("storyframe-dependency==1.0\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'storyframe'\n")
    python = tmp_path / "python3"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return Checkout(root, tmp_path / "calls", python)


def test_first_serve_says_it_creates_the_environment_and_installs_the_lock(
    checkout: Checkout,
) -> None:
    stdout, stderr = checkout.serve()

    assert stdout == "storyframe serve --port 4100\n"  # stdout is the server's alone
    assert "creating the environment in .venv" in stderr
    assert "installing the pinned dependencies from requirements.lock" in stderr
    assert "only on first use and when the lock changes" in stderr
    assert stderr.splitlines()[-1] == "dev: the environment is ready"
    venv, lock, project = checkout.recorded()
    assert venv == "-m venv .venv"
    assert "-r requirements.lock" in lock
    assert project.endswith("-e .")


def test_later_serves_are_silent_until_the_lock_changes(checkout: Checkout) -> None:
    checkout.serve()
    setup = checkout.recorded()

    stdout, stderr = checkout.serve()
    assert (stdout, stderr) == ("storyframe serve --port 4100\n", "")
    assert checkout.recorded() == setup

    with (checkout.root / "requirements.lock").open("a") as lock:
        lock.write("another-dependency==2.0\n")
    stdout, stderr = checkout.serve()
    assert stdout == "storyframe serve --port 4100\n"
    assert "creating the environment" not in stderr
    assert "requirements.lock or pyproject.toml changed" in stderr
    assert "installing the pinned dependencies from requirements.lock" in stderr
    assert len(checkout.recorded()) == len(setup) + 2  # the two installs, no new environment
