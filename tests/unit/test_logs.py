"""Logging set-up: stdlib log calls and their `extra` fields, rendered as JSON lines or console
lines; no per-request noise from HTTP clients, no chatter from Alembic."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from storyframe.logs import configure_logging

QUIETED = ("httpx2", "alembic")
FIELDS = {"status": "SUCCEEDED", "model": "gpt-image-2.6-flare", "estimated_cost_usd": 0.12}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in QUIETED}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in quiet.items():
        logging.getLogger(name).setLevel(saved)


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def fail_and_log(log: logging.Logger) -> None:
    try:
        raise ValueError("the frame is gone")
    except ValueError:
        log.exception("could not delete blob", extra={"key": "ab/cd.png"})


def test_the_sdk_http_client_logs_only_warnings() -> None:
    configure_logging("json", "info")
    assert not logging.getLogger("httpx2").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx2").isEnabledFor(logging.WARNING)
    assert logging.getLogger("storyframe.generation").isEnabledFor(logging.INFO)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_alembic_logs_only_warnings(fmt: str) -> None:
    configure_logging(fmt, "info")
    assert not logging.getLogger("alembic.runtime.plugins").isEnabledFor(logging.INFO)
    assert not logging.getLogger("alembic.runtime.migration").isEnabledFor(logging.INFO)
    assert logging.getLogger("alembic.runtime.migration").isEnabledFor(logging.WARNING)


def test_json_lines_carry_the_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    logging.getLogger("storyframe.generation").info("generation finished", extra=FIELDS)
    (entry,) = json_lines(capsys)
    assert list(entry)[:4] == ["time", "level", "logger", "message"]
    assert entry["message"] == "generation finished"
    assert (entry["level"], entry["logger"]) == ("info", "storyframe.generation")
    assert {key: entry[key] for key in FIELDS} == FIELDS


def test_json_lines_format_the_message_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    logging.getLogger("storyframe").info("serving on http://%s:%s/graphql", "127.0.0.1", 4000)
    (entry,) = json_lines(capsys)
    assert entry["message"] == "serving on http://127.0.0.1:4000/graphql"


def test_json_exceptions_are_structured(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    fail_and_log(logging.getLogger("storyframe.files"))
    (entry,) = json_lines(capsys)
    assert (entry["level"], entry["key"]) == ("error", "ab/cd.png")
    (exception,) = entry["exception"]
    assert (exception["exc_type"], exception["exc_value"]) == ("ValueError", "the frame is gone")
    (frame,) = exception["frames"]
    assert frame["name"] == "fail_and_log"
    assert "locals" not in frame  # a frame's variables may hold secrets


def test_json_lines_leave_out_uvicorns_coloured_copy(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 7, extra={"color_message": "\x1b[1mStarted\x1b[0m"}
    )
    (entry,) = json_lines(capsys)
    assert entry["message"] == "Started server process [7]"
    assert "color_message" not in entry


def test_console_lines_show_the_extra_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "info")
    logging.getLogger("storyframe.generation").info("generation finished", extra=FIELDS)
    (line,) = capsys.readouterr().err.splitlines()
    assert "generation finished" in line
    assert "info" in line
    assert "storyframe.generation" in line
    for key, value in FIELDS.items():
        assert f"{key}={value}" in line
    assert "\x1b[" not in line  # no terminal colours when not writing to a terminal


def test_console_exceptions_show_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "info")
    fail_and_log(logging.getLogger("storyframe.files"))
    first, *traceback = capsys.readouterr().err.splitlines()
    assert "could not delete blob" in first
    assert "key=ab/cd.png" in first
    assert traceback[0] == "Traceback (most recent call last):"
    assert "in fail_and_log" in "\n".join(traceback)
    assert traceback[-1] == "ValueError: the frame is gone"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_console_lines_are_coloured_in_a_terminal_unless_no_color_is_set(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, coloured: bool
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    configure_logging("console", "info")
    logging.getLogger("storyframe.generation").info("generation finished", extra=FIELDS)
    assert ("\x1b[" in terminal.getvalue()) is coloured
