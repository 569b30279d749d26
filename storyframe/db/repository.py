"""The SQL write side: one transaction per unit of work, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import SQLModel, col

from storyframe.db.diagnostics import SqlRunRows
from storyframe.db.engine import WRITE_OPTION
from storyframe.db.exports import SqlExportRows
from storyframe.db.ownership import owned_by
from storyframe.db.places import message_column, placement_column, table_of
from storyframe.db.tables import (
    Context,
    Frame,
    Generation,
    Image,
    ImagePlacement,
    MainChat,
    Message,
    MessageAttachment,
    Project,
    User,
    Video,
)
from storyframe.domain.places import Place, PlaceKind, PlaceOwner
from storyframe.domain.ports import Doomed, Repository

Row = TypeVar("Row", bound=SQLModel)


def _placement_is(image_id: int, place: Place) -> ColumnElement[bool]:
    same_place: ColumnElement[bool] = placement_column(place.kind) == place.id
    return (col(ImagePlacement.image_id) == image_id) & same_place


QueuedHook = Callable[[AsyncSession], Awaitable[None]]
"""Runs in a transaction that queued generations, just before it commits: the PostgreSQL job
queue grants them running slots there."""


class SqlRepository(Repository):
    def __init__(
        self, session: AsyncSession, owner_id: int, on_queued: QueuedHook | None = None
    ) -> None:
        self._session = session
        self._owner_id = owner_id
        self._on_queued = on_queued
        self._queued = False

    @property
    def owner_id(self) -> int:
        return self._owner_id

    async def get(self, model: type[Row], id: int) -> Row | None:
        model_id: Any = model.id  # type: ignore[attr-defined]
        found: Row | None = await self._session.scalar(
            select(model).where(model_id == id, owned_by(model, self._owner_id))
        )
        return found

    async def add(self, row: SQLModel) -> None:
        self._session.add(row)
        await self._session.flush()

    async def save(self, row: SQLModel) -> None:
        self._session.add(row)
        await self._session.flush()

    async def lock_video(self, video_id: int) -> None:
        # FOR NO KEY UPDATE, not FOR UPDATE: rows inserted under another lock that refer to the
        # video or its project (an image's foreign keys take FOR KEY SHARE) must not wait for
        # it, or a project's deletion and a generation finishing in it would deadlock. A no-op
        # on SQLite, whose write transactions are already exclusive.
        await self._session.execute(
            select(col(Video.id)).where(col(Video.id) == video_id).with_for_update(key_share=True)
        )

    async def lock_owner(self, owner: PlaceOwner) -> None:
        if owner.video_id is not None:
            await self.lock_video(owner.video_id)
            return
        await self._session.execute(
            select(col(Project.id))
            .where(col(Project.id) == owner.project_id)
            .with_for_update(key_share=True)
        )

    async def lock_images(self, image_ids: Collection[int], *, exclusive: bool) -> set[int]:
        # FOR KEY SHARE is what a foreign key to the image takes anyway, taken before anything
        # else is written; FOR UPDATE is what deleting it takes, taken before its placements
        # and attachments are. A plain read on SQLite, whose write transactions are exclusive.
        if not image_ids:
            return set()
        statement = (
            select(col(Image.id))
            .where(col(Image.id).in_(sorted(image_ids)), owned_by(Image, self._owner_id))
            .order_by(col(Image.id))
            .with_for_update(key_share=not exclusive, read=not exclusive)
        )
        return {pk for pk in (await self._session.scalars(statement)).all() if pk is not None}

    async def lock_image_places(self, image_id: int) -> bool:
        # FOR NO KEY UPDATE: two of these wait for each other, and the image's deletion (FOR
        # UPDATE) waits for it or goes first, while a placement or an attachment referring to
        # the image (FOR KEY SHARE) goes on. A plain read on SQLite, as for `lock_video`.
        statement = (
            select(col(Image.id))
            .where(col(Image.id) == image_id, owned_by(Image, self._owner_id))
            .with_for_update(key_share=True)
        )
        return await self._session.scalar(statement) is not None

    async def frames_of_video(self, video_id: int) -> list[Frame]:
        rows = await self._session.scalars(
            select(Frame).where(col(Frame.video_id) == video_id).order_by(col(Frame.order))
        )
        return list(rows)

    async def set_frame_orders(self, video_id: int, frames: Sequence[Frame]) -> None:
        # Two steps keep the unique (video_id, order) index satisfied after every statement.
        await self._session.execute(
            update(Frame)
            .where(col(Frame.video_id) == video_id)
            .values(order=-col(Frame.order) - 1)
            .execution_options(synchronize_session=False)
        )
        for position, frame in enumerate(frames):
            await self._session.execute(
                update(Frame)
                .where(col(Frame.id) == frame.id)
                .values(order=position)
                .execution_options(synchronize_session=False)
            )
            # Already written: record the value as committed so a flush does not write it again.
            set_committed_value(frame, "order", position)

    async def owner_of(self, place: Place) -> PlaceOwner | None:
        if place.kind is PlaceKind.GALLERY:
            project = await self.get(Project, place.id)
            return PlaceOwner(place.id, None) if project else None
        model: Any = table_of(place.kind)
        row = (
            await self._session.execute(
                select(col(Video.project_id), col(Video.id))
                .join(model, col(model.video_id) == col(Video.id))
                .where(col(model.id) == place.id, owned_by(Video, self._owner_id))
            )
        ).first()
        return PlaceOwner(row[0], row[1]) if row else None

    async def has_placement(self, image_id: int, place: Place) -> bool:
        found = await self._session.scalar(
            select(col(ImagePlacement.id)).where(_placement_is(image_id, place)).limit(1)
        )
        return found is not None

    async def count_placements(self, image_id: int) -> int:
        statement = (
            select(func.count())
            .select_from(ImagePlacement)
            .where(col(ImagePlacement.image_id) == image_id)
        )
        return int(await self._session.scalar(statement) or 0)

    async def add_placement(self, image_id: int, place: Place) -> None:
        if not await self.has_placement(image_id, place):
            placement = ImagePlacement(image_id=image_id)
            setattr(placement, place.kind.column, place.id)
            self._session.add(placement)
            await self._session.flush()

    async def remove_placement(self, image_id: int, place: Place) -> bool:
        result = await self._session.execute(
            delete(ImagePlacement).where(_placement_is(image_id, place))
        )
        return bool(getattr(result, "rowcount", 0))

    async def remove_placements_in_project(self, image_id: int, project_id: int) -> None:
        videos = select(col(Video.id)).where(col(Video.project_id) == project_id)
        await self._session.execute(
            delete(ImagePlacement).where(
                col(ImagePlacement.image_id) == image_id,
                or_(
                    col(ImagePlacement.gallery_project_id) == project_id,
                    col(ImagePlacement.frame_id).in_(
                        select(col(Frame.id)).where(col(Frame.video_id).in_(videos))
                    ),
                    col(ImagePlacement.context_id).in_(
                        select(col(Context.id)).where(col(Context.video_id).in_(videos))
                    ),
                    col(ImagePlacement.main_chat_id).in_(
                        select(col(MainChat.id)).where(col(MainChat.video_id).in_(videos))
                    ),
                ),
            )
        )
        await self._session.execute(
            update(Frame)
            .where(col(Frame.selected_image_id) == image_id, col(Frame.video_id).in_(videos))
            .values(selected_image_id=None)
            .execution_options(synchronize_session=False)
        )

    async def unselect_image(self, image_id: int, frame_id: int) -> None:
        await self._session.execute(
            update(Frame)
            .where(col(Frame.selected_image_id) == image_id, col(Frame.id) == frame_id)
            .values(selected_image_id=None)
            .execution_options(synchronize_session=False)
        )

    async def add_attachments(self, message_id: int, image_ids: Sequence[int]) -> None:
        self._session.add_all(
            MessageAttachment(message_id=message_id, image_id=image_id, position=position)
            for position, image_id in enumerate(image_ids)
        )
        await self._session.flush()

    async def context_of_video(self, video_id: int) -> Context | None:
        found: Context | None = await self._session.scalar(
            select(Context).where(
                col(Context.video_id) == video_id, owned_by(Context, self._owner_id)
            )
        )
        return found

    async def queue_generation(self, generation: Generation) -> None:
        await self.add(generation)
        self._queued = True

    async def start_generation(self, generation_id: int, now: datetime) -> bool:
        result = await self._session.execute(
            update(Generation)
            .where(
                col(Generation.id) == generation_id,
                col(Generation.status) == "QUEUED",
                owned_by(Generation, self._owner_id),
            )
            .values(
                status="RUNNING",
                started_at=func.coalesce(col(Generation.started_at), now),
                heartbeat_at=now,
                attempts=col(Generation.attempts) + 1,
                slot_state=None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def generation_for_key(self, key: str) -> Generation | None:
        # Two requests with a key take turns on the user's row (a no-op on SQLite, whose
        # write transactions are already exclusive).
        await self._session.execute(
            select(col(User.id))
            .where(col(User.id) == self._owner_id)
            .with_for_update(key_share=True)
        )
        statement = select(Generation).where(
            col(Generation.owner_id) == self._owner_id, col(Generation.idempotency_key) == key
        )
        return (await self._session.scalars(statement)).first()

    async def attachments_of(self, message_id: int) -> list[Image]:
        statement = (
            select(Image)
            .join(MessageAttachment, col(MessageAttachment.image_id) == col(Image.id))
            .where(col(MessageAttachment.message_id) == message_id)
            .order_by(col(MessageAttachment.position))
        )
        return list((await self._session.scalars(statement)).all())

    async def _ids(self, model: Any, column: Any, values: Iterable[int]) -> set[int]:
        """Ids of the `model` rows whose `column` is one of `values`."""
        statement = select(col(model.id)).where(column.in_(list(values)))
        return set((await self._session.scalars(statement)).all())

    async def video_ids_of_project(self, project_id: int) -> set[int]:
        return await self._ids(Video, Video.project_id, [project_id])

    async def frame_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]:
        return await self._ids(Frame, Frame.video_id, video_ids)

    async def main_chat_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]:
        return await self._ids(MainChat, MainChat.video_id, video_ids)

    async def message_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]:
        return await self._ids(Message, Message.video_id, video_ids)

    async def message_ids_of_chat(self, chat: Place) -> set[int]:
        return await self._ids(Message, message_column(chat.kind), [chat.id])

    async def image_ids_of_project(self, project_id: int) -> set[int]:
        return await self._ids(Image, Image.project_id, [project_id])

    async def image_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]:
        return await self._ids(Image, Image.video_id, video_ids)

    async def image_ids_of_messages(self, message_ids: Iterable[int]) -> set[int]:
        return await self._ids(Image, Image.message_id, message_ids)

    async def storage_keys_of(self, image_ids: Iterable[int]) -> set[str]:
        statement = select(col(Image.storage_key)).where(col(Image.id).in_(list(image_ids)))
        return set((await self._session.scalars(statement)).all())

    async def delete(self, doomed: Doomed) -> None:
        session = self._session
        if doomed.images:
            ids = list(doomed.images)
            await self.lock_images(ids, exclusive=True)
            await self.unselect_image_ids(ids)
            await session.execute(
                delete(ImagePlacement).where(col(ImagePlacement.image_id).in_(ids))
            )
            await session.execute(
                delete(MessageAttachment).where(col(MessageAttachment.image_id).in_(ids))
            )
            await session.execute(delete(Image).where(col(Image.id).in_(ids)))
        for model, ids_ in (
            (Message, doomed.messages),
            (Frame, doomed.frames),
            (MainChat, doomed.main_chats),
            (Video, doomed.videos),
            (Project, doomed.projects),
        ):
            if ids_:
                # What else hangs off these rows (contexts, placements) cascades in the database.
                await session.execute(delete(model).where(col(model.id).in_(list(ids_))))
        session.expunge_all()

    async def unselect_image_ids(self, image_ids: list[int]) -> None:
        await self._session.execute(
            update(Frame)
            .where(col(Frame.selected_image_id).in_(image_ids))
            .values(selected_image_id=None)
            .execution_options(synchronize_session=False)
        )

    async def delete_row(self, row: SQLModel) -> None:
        await self._session.delete(row)
        await self._session.flush()

    @property
    def exports(self) -> SqlExportRows:
        return SqlExportRows(self._session, self._owner_id, self._mark_queued)

    @property
    def runs(self) -> SqlRunRows:
        return SqlRunRows(self._session, self._owner_id)

    def _mark_queued(self) -> None:
        self._queued = True

    async def commit(self) -> None:
        if self._queued and self._on_queued is not None:
            self._queued = False
            await self._on_queued(self._session)
        await self._session.commit()


class SqlUnitOfWork:
    """Write transactions on behalf of one user."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        owner_id: int,
        on_queued: QueuedHook | None = None,
    ) -> None:
        self._sessions = sessions
        self._owner_id = owner_id
        self._on_queued = on_queued

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Repository]:
        async with self._sessions() as session:
            await session.connection(execution_options={WRITE_OPTION: True})
            yield SqlRepository(session, self._owner_id, self._on_queued)


async def count_rows(session: AsyncSession, model: type[SQLModel]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)
