"""Logging set-up: one JSON object per line, and no per-request noise from HTTP clients."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from storyframe.logs import JsonFormatter, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = logging.getLogger("httpx2").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("httpx2").setLevel(quiet)


def test_the_sdk_http_client_logs_only_warnings() -> None:
    configure_logging("json", "info")
    assert not logging.getLogger("httpx2").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx2").isEnabledFor(logging.WARNING)
    assert logging.getLogger("storyframe.generation").isEnabledFor(logging.INFO)


def test_extra_fields_become_json_keys() -> None:
    record = logging.makeLogRecord(
        {
            "name": "storyframe.generation",
            "msg": "generation finished",
            "levelno": 20,
            "levelname": "INFO",
            "status": "SUCCEEDED",
            "estimated_cost_usd": 0.12,
        }
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "generation finished"
    assert (entry["status"], entry["estimated_cost_usd"]) == ("SUCCEEDED", 0.12)
    assert entry["level"] == "info"
