"""`storyframe selftest [--suite openai|api] [--yes] [--json]` in a process of its own, offline
(placeholder images) or against the fake OpenAI: the JSON report, the table, the exit status,
and the checks that cost money held back without `--yes`."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from storyframe.selftest import ACCOUNT, run_selftest
from storyframe.services.diagnostics import Suite, plan
from tests.support.apps import settings_for
from tests.support.fake_openai import FakeOpenAI, fake_openai_fixture  # noqa: F401
from tests.support.servers import (
    STOP_TIMEOUT,
    STORYFRAME,
    free_port,
    run_storyframe,
    server_environment,
)

PAID = ["openai.text", "openai.image", "openai.vision", "openai.edit"]


def _environment(data_dir: Path, fake: FakeOpenAI | None = None, **extra: str) -> dict[str, str]:
    """The test's environment for a command: its own data directory (and SQLite database),
    the fake OpenAI's key and address when given, wide lines."""
    env = server_environment(data_dir, free_port(), COLUMNS="250", **extra)
    for name in ("OPENAI_BASE_URL", "OPENAI_IMAGE_MODEL", "OPENAI_VISION_MODEL", "LOG_LEVEL"):
        env.pop(name, None)
    if fake is not None:
        env.update(OPENAI_API_KEY=fake.api_key, OPENAI_BASE_URL=fake.base_url)
    return env


def _selftest_json(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    """`storyframe selftest --json ...`: its exit status, its stdout read as JSON (which fails
    unless stdout holds that JSON and nothing else), and its stderr (the log)."""
    result = subprocess.run(
        [str(STORYFRAME), "selftest", "--json", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=STOP_TIMEOUT,
        check=False,
    )
    stdout, stderr = result.stdout.decode(), result.stderr.decode(errors="replace")
    try:
        report: dict[str, Any] = json.loads(stdout)
    except ValueError:
        pytest.fail(f"stdout is not JSON alone:\n{stdout}\nstderr:\n{stderr}")
    return result.returncode, report, stderr


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in report["checks"]}


def test_offline_json_has_every_check_passed_against_the_placeholder(tmp_path: Path) -> None:
    code, report, log = _selftest_json(_environment(tmp_path))

    assert code == 0, log
    assert (report["suite"], report["ok"], report["provider"]) == ("OPENAI", True, "placeholder")
    assert _statuses(report) == {name: "PASSED" for name, _ in plan(Suite.OPENAI)}
    image = next(check for check in report["checks"] if check["name"] == "openai.image")
    (made,) = image["outputImages"]
    assert (made["contentType"], made["width"], made["height"]) == ("image/png", 1024, 1024)
    assert set(made) == {"contentType", "bytes", "width", "height"}
    assert report["estimatedCostUsd"] == 0.0
    assert set(image) >= {"durationMs", "skippedReason", "errorCode", "estimatedCostUsd"}


def test_the_api_suite_runs_as_its_own_account_and_leaves_no_project(tmp_path: Path) -> None:
    code, report, log = _selftest_json(_environment(tmp_path), "--suite", "api")

    assert code == 0, log
    assert report["suite"] == "API"
    assert _statuses(report) == {name: "PASSED" for name, _ in plan(Suite.API)}
    with sqlite3.connect(tmp_path / "storyframe.db") as database:
        users = database.execute("SELECT email FROM users").fetchall()
        projects = database.execute("SELECT count(*) FROM projects").fetchone()
    assert users == [(ACCOUNT,)]
    assert projects == (0,)

    # a second run uses the same account
    code, report, log = _selftest_json(_environment(tmp_path), "--suite", "api")

    assert code == 0, log
    with sqlite3.connect(tmp_path / "storyframe.db") as database:
        assert database.execute("SELECT count(*) FROM users").fetchone() == (1,)


def test_with_a_key_and_no_yes_the_paid_checks_are_skipped(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    code, report, log = _selftest_json(_environment(tmp_path, fake_openai), "--suite", "openai")

    assert code == 0, log
    statuses = _statuses(report)
    assert statuses == {**dict.fromkeys(PAID, "SKIPPED"), "openai.models": "PASSED"}
    for check in report["checks"][:4]:
        assert check["skippedReason"].startswith("costs money: run with --yes (about $0.0")
    assert report["suiteEstimatedCostUsd"] > 0.01
    assert [r.endpoint for r in fake_openai.requests] == ["models"]
    assert fake_openai.api_key not in json.dumps(report)


def test_with_yes_every_check_runs_and_a_failed_one_exits_1(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail("generations", status=500, code="server_error")

    code, report, log = _selftest_json(_environment(tmp_path, fake_openai), "--yes")

    assert code == 1, log
    assert report["ok"] is False
    assert _statuses(report) == {
        "openai.text": "PASSED",
        "openai.image": "FAILED",
        "openai.vision": "SKIPPED",
        "openai.edit": "SKIPPED",
        "openai.models": "PASSED",
    }
    failed = report["checks"][1]
    assert failed["errorCode"] == "UNAVAILABLE"
    assert fake_openai.api_key not in json.dumps(report)


def test_the_table_shows_each_check_with_its_status_and_the_cost(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    status, output = run_storyframe(_environment(tmp_path, fake_openai), "selftest")

    assert status == 0, output
    for _, title in plan(Suite.OPENAI):
        assert title in output
    assert output.count("SKIPPED") == 4
    assert "PASSED" in output
    assert "the checks that cost money are skipped: run with --yes (about $0.0" in output
    assert "Estimated cost of this run: $0.0000" in output
    # not a terminal: the final table only, no live display
    assert "pending" not in output
    assert "\x1b[" not in output


def test_the_table_of_the_api_suite(tmp_path: Path) -> None:
    status, output = run_storyframe(_environment(tmp_path), "selftest", "--suite", "api")

    assert status == 0, output
    for _, title in plan(Suite.API):
        assert title in output
    assert output.count("PASSED") == 5
    assert "scratch project deleted" in output


async def test_a_terminal_sees_each_check_turn_from_pending_to_its_status(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    settings = settings_for(None, tmp_path)

    code = await run_selftest(
        settings, Suite.OPENAI, yes=False, as_json=False, out=out, terminal=True
    )

    assert code == 0
    shown = out.getvalue()
    # the live table first shows every check pending (the first running), then each done
    assert shown.index("running…") < shown.index("pending") < shown.index("PASSED")
    assert shown.count("pending") >= 4
    for _, title in plan(Suite.OPENAI):
        assert title in shown
