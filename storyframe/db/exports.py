"""The exports of one owner inside a repository's transaction, and the frames an export reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storyframe.db.ownership import owned_by
from storyframe.db.tables import Export, Frame, Generation, Image, Message, User
from storyframe.domain.exports import UNFINISHED_EXPORTS, ExportRows, FrameSource

_SOURCE_COLUMNS = (
    col(Frame.id),
    col(Frame.order),
    col(Frame.title),
    col(Frame.caption),
    col(Frame.duration_ms),
    col(Image.id),
    col(Image.storage_key),
    col(Image.url),
    col(Image.width),
    col(Image.height),
    col(Image.content_type),
    col(Message.prompt),
    col(Message.final_prompt),
    col(Generation.model),
)


class SqlExportRows(ExportRows):
    def __init__(self, session: AsyncSession, owner_id: int, queued: Callable[[], None]) -> None:
        self._session = session
        self._owner_id = owner_id
        self._queued = queued

    async def for_key(self, key: str) -> Export | None:
        await self._take_turns()
        statement = select(Export).where(
            col(Export.owner_id) == self._owner_id, col(Export.idempotency_key) == key
        )
        return (await self._session.scalars(statement)).first()

    async def _take_turns(self) -> None:
        """Two requests of one user that check a key or the cap take turns on the user's row (a
        no-op on SQLite, whose write transactions are already exclusive)."""
        await self._session.execute(
            select(col(User.id))
            .where(col(User.id) == self._owner_id)
            .with_for_update(key_share=True)
        )

    async def locked(self, export_id: int) -> Export | None:
        statement = (
            select(Export)
            .where(col(Export.id) == export_id, col(Export.owner_id) == self._owner_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self._session.scalars(statement)).first()

    async def queue(self, export: Export) -> None:
        self._session.add(export)
        await self._session.flush()
        self._queued()

    async def start(self, export_id: int, now: datetime) -> bool:
        result = await self._session.execute(
            update(Export)
            .where(
                col(Export.id) == export_id,
                col(Export.status) == "QUEUED",
                col(Export.owner_id) == self._owner_id,
                col(Export.cancel_requested).is_(False),
            )
            .values(
                status="RUNNING",
                started_at=now,
                heartbeat_at=now,
                attempts=col(Export.attempts) + 1,
                progress_done=0,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def unfinished(self) -> int:
        await self._take_turns()
        statement = select(func.count()).where(
            col(Export.owner_id) == self._owner_id, col(Export.status).in_(UNFINISHED_EXPORTS)
        )
        return int(await self._session.scalar(statement) or 0)

    async def frames(self, video_id: int) -> list[FrameSource]:
        statement = _sources(self._owner_id).where(col(Frame.video_id) == video_id)
        return [_source(row) for row in await self._session.execute(statement)]

    async def frames_by_id(self, frame_ids: Sequence[int]) -> list[FrameSource]:
        if not frame_ids:
            return []
        statement = _sources(self._owner_id).where(col(Frame.id).in_(list(frame_ids)))
        found = {row[0]: _source(row) for row in await self._session.execute(statement)}
        return [found[pk] for pk in frame_ids if pk in found]

    async def file_keys_of_videos(self, video_ids: Iterable[int]) -> set[str]:
        ids = list(video_ids)
        if not ids:
            return set()
        statement = select(col(Export.storage_key), col(Export.subtitles_key)).where(
            col(Export.video_id).in_(ids)
        )
        return {
            key for row in await self._session.execute(statement) for key in row if key is not None
        }


def _sources(owner_id: int) -> Any:
    """Frames with their selected image, its message and generation (each may be missing)."""
    return (
        select(*_SOURCE_COLUMNS)
        .select_from(Frame)
        .outerjoin(Image, col(Image.id) == col(Frame.selected_image_id))
        .outerjoin(Message, col(Message.id) == col(Image.message_id))
        .outerjoin(Generation, col(Generation.message_id) == col(Message.id))
        .where(owned_by(Frame, owner_id))
        .order_by(col(Frame.order))
    )


def _source(row: Any) -> FrameSource:
    (
        frame_id,
        order,
        title,
        caption,
        duration_ms,
        image_id,
        key,
        url,
        width,
        height,
        content_type,
        prompt,
        final_prompt,
        model,
    ) = row
    return FrameSource(
        frame_id=frame_id,
        order=order,
        title=title,
        caption=caption,
        duration_ms=duration_ms,
        image_id=image_id,
        storage_key=key,
        url=url,
        width=width or 0,
        height=height or 0,
        content_type=content_type,
        prompt=prompt,
        final_prompt=final_prompt,
        model=model,
    )
