"""What crosses the database for progress events: the notifications' payloads (an event's small
facts, never an image), and the events' own asyncpg connections."""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from sqlalchemy.engine import make_url

from storyframe.domain.jobs import (
    DiagnosticsEvent,
    DiagnosticsEventKind,
    EventKind,
    ExportEvent,
    ExportEventKind,
    GenerationEvent,
    JobEvent,
)

CHANNEL = "storyframe_events"
CONNECT_TIMEOUT_SECONDS = 5.0
STATEMENT_TIMEOUT_SECONDS = 10.0
NOTIFY = "SELECT pg_notify($1, $2)"

_APPLICATION = "storyframe-events"

CONNECTION_FAILURES = (
    TimeoutError,
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
)
"""What a statement raises when its connection failed, rather than what it asked."""


def asyncpg_dsn(database_url: str) -> str:
    """The app's database URL (`postgresql+asyncpg://…`, or plain `postgresql://…`) as asyncpg
    connects to it."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"progress events across processes need PostgreSQL, not {url.drivername}")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def payload_of(event: JobEvent, preview_id: int | None = None) -> str:
    """The notification's payload: the event's small facts, and the row its preview was written
    to; never the image."""
    if isinstance(event, DiagnosticsEvent):
        return orjson.dumps(
            {
                "kind": event.kind.value,
                "run_id": event.run_id,
                "owner_id": event.owner_id,
                "check_index": event.check_index,
            }
        ).decode()
    if isinstance(event, ExportEvent):
        return orjson.dumps(
            {
                "kind": event.kind.value,
                "export_id": event.export_id,
                "video_id": event.video_id,
                "owner_id": event.owner_id,
            }
        ).decode()
    facts: dict[str, object] = {
        "kind": event.kind.value,
        "generation_id": event.generation_id,
        "video_id": event.video_id,
        "owner_id": event.owner_id,
    }
    if event.index is not None:
        facts["index"] = event.index
    if event.image_id is not None:
        facts["image_id"] = event.image_id
    if preview_id is not None:
        facts["preview_id"] = preview_id
    return orjson.dumps(facts).decode()


def facts_of(payload: str) -> tuple[JobEvent, int | None]:
    """The event a payload describes (without its preview), and its preview's row; ValueError
    when the payload is not one of ours."""
    facts = orjson.loads(payload)
    if not isinstance(facts, dict):
        raise ValueError("not an object")

    def optional(name: str) -> int | None:
        value = facts.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"{name} is not a number")
        return value

    def required(name: str) -> int:
        value = optional(name)
        if value is None:
            raise ValueError(f"{name} is missing")
        return value

    if "run_id" in facts:
        return DiagnosticsEvent(
            DiagnosticsEventKind(str(facts.get("kind"))),
            required("run_id"),
            required("owner_id"),
            optional("check_index"),
        ), None
    if "export_id" in facts:
        return ExportEvent(
            ExportEventKind(str(facts.get("kind"))),
            required("export_id"),
            required("video_id"),
            required("owner_id"),
        ), None
    event = GenerationEvent(
        EventKind(str(facts.get("kind"))),
        required("generation_id"),
        required("video_id"),
        required("owner_id"),
        index=optional("index"),
        image_id=optional("image_id"),
    )
    return event, optional("preview_id")


def reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip().splitlines()[0]


async def connect(dsn: str, seconds: float) -> Any:
    """A connection of the events' own, made within `seconds`."""
    return await asyncpg.connect(
        dsn, timeout=seconds, server_settings={"application_name": _APPLICATION}
    )


async def close(connection: Any) -> None:
    """Close gracefully if the server answers soon; cut the connection otherwise."""
    try:
        await connection.close(timeout=1.0)
    except Exception:  # the server is gone or slow: close() has aborted the connection
        connection.terminate()
