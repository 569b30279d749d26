"""Structured logging: one JSON object per line in production, readable lines in a console.

The code base logs through the standard library (`log.info("…", extra={…})`); structlog's
`ProcessorFormatter` renders those records, their `extra` fields included, in either format.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# A structured traceback, without each frame's local variables (they may hold secrets).
_exception_as_dict = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def _drop_color_message(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """uvicorn passes a terminal-coloured copy of some messages as an extra field."""
    event.pop("color_message", None)
    return event


def _message_first(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """`time`, `level`, `logger` and `message` lead each JSON line; the fields follow."""
    head = {key: event.pop(key) for key in ("time", "level", "logger") if key in event}
    return {**head, "message": event.pop("event", None), **event}


def _json_dumps(entry: Any, **_: Any) -> str:
    return orjson.dumps(entry, default=str).decode()


def formatter(fmt: str, *, colors: bool = False) -> structlog.stdlib.ProcessorFormatter:
    """Renders stdlib log records as JSON (`fmt == "json"`) or as console lines."""
    renderer: list[Processor]
    if fmt == "json":
        stamp = structlog.processors.TimeStamper(fmt="iso", utc=True, key="time")
        renderer = [
            _message_first,
            _exception_as_dict,
            structlog.processors.JSONRenderer(serializer=_json_dumps),
        ]
    else:
        stamp = structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False)
        renderer = [
            structlog.dev.ConsoleRenderer(
                colors=colors,
                sort_keys=False,
                exception_formatter=structlog.dev.plain_traceback,
            )
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _drop_color_message,
            stamp,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )


def configure_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    colors = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    handler.setFormatter(formatter(fmt, colors=colors))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The OpenAI SDK's HTTP client logs every request at INFO; a generation's own line says more.
    logging.getLogger("httpx2").setLevel(max(logging.WARNING, root.level))
    # Alembic narrates every run (plugins set up, the dialect, each step) at INFO;
    # `storyframe` logs one line saying what the migrations did.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # The PDF library's font subsetting tells every table it copies, at INFO.
    logging.getLogger("fontTools").setLevel(max(logging.WARNING, root.level))
