"""Previews between processes: a notification cannot hold an image, so a preview waits in
`generation_previews` and its notification names the row, which every listening process reads
back. A generation's rows are deleted once its FINISHED event is sent; `storyframe gc` deletes
those a crash left (`delete_stale_previews`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from storyframe.domain.jobs import GenerationEvent, Preview
from storyframe.events.wire import (
    CONNECT_TIMEOUT_SECONDS,
    NOTIFY,
    STATEMENT_TIMEOUT_SECONDS,
    asyncpg_dsn,
    close,
    connect,
    payload_of,
)

PREVIEWS_KEPT = timedelta(hours=1)
"""Previews older than this are left by a crash: `storyframe gc` deletes them."""

_STORE_PREVIEW = """
    INSERT INTO generation_previews
        (generation_id, "index", sequence, content_type, width, height, data, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, now())
    RETURNING id
"""
_READ_PREVIEW = """
    SELECT sequence, content_type, width, height, data FROM generation_previews
    WHERE id = $1 AND generation_id = $2
"""
_DELETE_PREVIEWS = "DELETE FROM generation_previews WHERE generation_id = $1"
_DELETE_STALE_PREVIEWS = "DELETE FROM generation_previews WHERE created_at < now() - $1::interval"


async def notify_with_preview(
    connection: Any, channel: str, event: GenerationEvent, preview: Preview
) -> None:
    """Write the preview's row and send the notification naming it, in one transaction: a
    listener always finds the row."""
    async with connection.transaction():
        preview_id = await connection.fetchval(
            _STORE_PREVIEW,
            event.generation_id,
            event.index if event.index is not None else 0,
            preview.sequence,
            preview.content_type,
            preview.width,
            preview.height,
            preview.data,
            timeout=STATEMENT_TIMEOUT_SECONDS,
        )
        await connection.execute(
            NOTIFY, channel, payload_of(event, int(preview_id)), timeout=STATEMENT_TIMEOUT_SECONDS
        )


async def read_preview(connection: Any, preview_id: int, generation_id: int) -> Preview | None:
    """The preview a notification names; None when its row is gone."""
    row = await connection.fetchrow(
        _READ_PREVIEW, preview_id, generation_id, timeout=STATEMENT_TIMEOUT_SECONDS
    )
    if row is None:
        return None
    return Preview(
        data=bytes(row["data"]),
        content_type=str(row["content_type"]),
        width=int(row["width"]),
        height=int(row["height"]),
        sequence=int(row["sequence"]),
    )


async def delete_previews(connection: Any, generation_id: int) -> None:
    """Delete a finished generation's previews."""
    await connection.execute(_DELETE_PREVIEWS, generation_id, timeout=STATEMENT_TIMEOUT_SECONDS)


async def delete_stale_previews(database_url: str, older_than: timedelta = PREVIEWS_KEPT) -> int:
    """Delete the previews written longer than `older_than` ago: those of generations whose
    process stopped before they finished. How many were deleted."""
    connection = await connect(asyncpg_dsn(database_url), CONNECT_TIMEOUT_SECONDS)
    try:
        status = await connection.execute(
            _DELETE_STALE_PREVIEWS, older_than, timeout=STATEMENT_TIMEOUT_SECONDS
        )
    finally:
        await close(connection)
    return int(str(status).rsplit(" ", 1)[-1])
