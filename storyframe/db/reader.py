"""The SQL read side: every method answers a whole batch of keys in one statement per kind."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlmodel import SQLModel, col

from storyframe.db.ownership import owned_by
from storyframe.db.places import message_column, placement_column
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
    Video,
)
from storyframe.domain.pages import PageRequest
from storyframe.domain.places import Place, PlaceKind, place_named_by
from storyframe.domain.ports import Reader

Row = TypeVar("Row", bound=SQLModel)
Key = TypeVar("Key")


def _by_kind(places: Sequence[Place]) -> dict[PlaceKind, list[int]]:
    grouped: dict[PlaceKind, list[int]] = defaultdict(list)
    for place in places:
        grouped[place.kind].append(place.id)
    return grouped


class SqlReader(Reader):
    """Reads on behalf of one user. Rows fetched by id, and the project list, are limited to
    what the user owns; everything else is reached from those rows, so it is theirs too."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], owner_id: int) -> None:
        self._sessions = sessions
        self._owner_id = owner_id

    async def _all(self, statement: Any) -> list[Any]:
        async with self._sessions() as session:
            return list((await session.execute(statement)).all())

    async def _top_per_group(
        self,
        model: type[Row],
        group: Any,
        where: Sequence[ColumnElement[bool]],
        page: PageRequest,
        join: tuple[Any, Any] | None = None,
    ) -> list[tuple[Any, Row]]:
        """(group value, row) pairs: up to `page.first + 1` rows per group, newest first."""
        model_id: Any = model.id  # type: ignore[attr-defined]
        rank = func.row_number().over(partition_by=group, order_by=model_id.desc()).label("rank")
        inner = select(model, group.label("grp"), rank)
        if join is not None:
            inner = inner.join(*join)
        inner = inner.where(*where)
        if page.before_id is not None:
            inner = inner.where(model_id < page.before_id)
        ranked = inner.subquery()
        row = aliased(model, ranked)
        statement = (
            select(ranked.c.grp, row)
            .where(ranked.c.rank <= page.first + 1)
            .order_by(ranked.c.grp, ranked.c.rank)
        )
        return [(grp, item) for grp, item in await self._all(statement)]

    async def get_many(self, model: type[Row], ids: Sequence[int]) -> Mapping[int, Row]:
        model_id: Any = model.id  # type: ignore[attr-defined]
        rows = await self._all(
            select(model).where(model_id.in_(list(ids)), owned_by(model, self._owner_id))
        )
        return {row.id: row for (row,) in rows}

    async def projects(self, page: PageRequest) -> list[Project]:
        statement = (
            select(Project)
            .where(owned_by(Project, self._owner_id))
            .order_by(col(Project.id).desc())
            .limit(page.first + 1)
        )
        if page.before_id is not None:
            statement = statement.where(col(Project.id) < page.before_id)
        return [row for (row,) in await self._all(statement)]

    async def count_projects(self) -> int:
        statement = (
            select(func.count()).select_from(Project).where(owned_by(Project, self._owner_id))
        )
        return int((await self._all(statement))[0][0])

    async def videos_of_projects(
        self, project_ids: Sequence[int], page: PageRequest
    ) -> Mapping[int, list[Video]]:
        pairs = await self._top_per_group(
            Video, col(Video.project_id), [col(Video.project_id).in_(list(project_ids))], page
        )
        return _grouped(pairs)

    async def contexts_of_videos(self, video_ids: Sequence[int]) -> Mapping[int, Context]:
        rows = await self._all(select(Context).where(col(Context.video_id).in_(list(video_ids))))
        return {row.video_id: row for (row,) in rows}

    async def frames_of_videos(self, video_ids: Sequence[int]) -> Mapping[int, list[Frame]]:
        rows = await self._all(
            select(Frame)
            .where(col(Frame.video_id).in_(list(video_ids)))
            .order_by(col(Frame.video_id), col(Frame.order))
        )
        return _grouped((row.video_id, row) for (row,) in rows)

    async def main_chats_of_videos(self, video_ids: Sequence[int]) -> Mapping[int, list[MainChat]]:
        rows = await self._all(
            select(MainChat)
            .where(col(MainChat.video_id).in_(list(video_ids)))
            .order_by(col(MainChat.video_id), col(MainChat.id))
        )
        return _grouped((row.video_id, row) for (row,) in rows)

    async def messages_of_chats(
        self, chats: Sequence[Place], page: PageRequest
    ) -> Mapping[Place, list[Message]]:
        found: dict[Place, list[Message]] = {}
        for kind, ids in _by_kind(chats).items():
            column = message_column(kind)
            pairs = await self._top_per_group(Message, column, [column.in_(ids)], page)
            found.update({Place(kind, k): v for k, v in _grouped(pairs).items()})
        return found

    async def images_of_messages(self, message_ids: Sequence[int]) -> Mapping[int, list[Image]]:
        rows = await self._all(
            select(Image)
            .where(col(Image.message_id).in_(list(message_ids)))
            .order_by(col(Image.message_id), col(Image.id))
        )
        return _grouped((row.message_id, row) for (row,) in rows)

    async def generations_of_messages(self, message_ids: Sequence[int]) -> Mapping[int, Generation]:
        rows = await self._all(
            select(Generation).where(col(Generation.message_id).in_(list(message_ids)))
        )
        return {row.message_id: row for (row,) in rows}

    async def attachments_of_messages(
        self, message_ids: Sequence[int]
    ) -> Mapping[int, list[Image]]:
        rows = await self._all(
            select(col(MessageAttachment.message_id), Image)
            .join(Image, col(Image.id) == col(MessageAttachment.image_id))
            .where(col(MessageAttachment.message_id).in_(list(message_ids)))
            .order_by(col(MessageAttachment.message_id), col(MessageAttachment.position))
        )
        return _grouped((message_id, image) for message_id, image in rows)

    async def images_of_places(
        self, places: Sequence[Place], page: PageRequest
    ) -> Mapping[Place, list[Image]]:
        found: dict[Place, list[Image]] = {}
        for kind, ids in _by_kind(places).items():
            column = placement_column(kind)
            pairs = await self._top_per_group(
                Image,
                column,
                [column.in_(ids)],
                page,
                join=(ImagePlacement, col(ImagePlacement.image_id) == col(Image.id)),
            )
            found.update({Place(kind, k): v for k, v in _grouped(pairs).items()})
        return found

    async def images_of_projects(
        self, keys: Sequence[tuple[int, int | None]], page: PageRequest
    ) -> Mapping[tuple[int, int | None], list[Image]]:
        whole = [project for project, video in keys if video is None]
        # Several projects may ask for the images of one video (all but its own get none).
        by_video: dict[int, set[int]] = defaultdict(set)
        for project, video in keys:
            if video is not None:
                by_video[video].add(project)
        found: dict[tuple[int, int | None], list[Image]] = {}
        if whole:
            pairs = await self._top_per_group(
                Image, col(Image.project_id), [col(Image.project_id).in_(whole)], page
            )
            found.update({(k, None): v for k, v in _grouped(pairs).items()})
        if by_video:
            pairs = await self._top_per_group(
                Image,
                col(Image.video_id),
                [
                    col(Image.video_id).in_(list(by_video)),
                    col(Image.project_id).in_(sorted(set().union(*by_video.values()))),
                ],
                page,
            )
            for video, images in _grouped(pairs).items():
                for project in by_video[video]:
                    found[(project, video)] = [i for i in images if i.project_id == project]
        return found

    async def places_of_images(self, image_ids: Sequence[int]) -> Mapping[int, list[Place]]:
        rows = await self._all(
            select(ImagePlacement)
            .where(col(ImagePlacement.image_id).in_(list(image_ids)))
            .order_by(col(ImagePlacement.id))
        )
        return _grouped((row.image_id, place_named_by(row)) for (row,) in rows)

    async def _counts(self, group: Any, where: ColumnElement[bool], model: Any) -> dict[Any, int]:
        rows = await self._all(
            select(group, func.count()).select_from(model).where(where).group_by(group)
        )
        return {key: int(count) for key, count in rows}

    async def count_videos(self, project_ids: Sequence[int]) -> Mapping[int, int]:
        column = col(Video.project_id)
        return await self._counts(column, column.in_(list(project_ids)), Video)

    async def count_project_images(
        self, keys: Sequence[tuple[int, int | None]]
    ) -> Mapping[tuple[int, int | None], int]:
        whole = [project for project, video in keys if video is None]
        videos = [video for _, video in keys if video is not None]
        found: dict[tuple[int, int | None], int] = {}
        if whole:
            counts = await self._counts(
                col(Image.project_id), col(Image.project_id).in_(whole), Image
            )
            found.update({(k, None): v for k, v in counts.items()})
        if videos:
            rows = await self._all(
                select(col(Image.project_id), col(Image.video_id), func.count())
                .where(col(Image.video_id).in_(videos))
                .group_by(col(Image.project_id), col(Image.video_id))
            )
            found.update({(p, v): int(n) for p, v, n in rows})
        return found

    async def count_frames(self, video_ids: Sequence[int]) -> Mapping[int, int]:
        column = col(Frame.video_id)
        return await self._counts(column, column.in_(list(video_ids)), Frame)

    async def count_messages(self, chats: Sequence[Place]) -> Mapping[Place, int]:
        found: dict[Place, int] = {}
        for kind, ids in _by_kind(chats).items():
            column = message_column(kind)
            counts = await self._counts(column, column.in_(ids), Message)
            found.update({Place(kind, k): v for k, v in counts.items()})
        return found

    async def count_place_images(self, places: Sequence[Place]) -> Mapping[Place, int]:
        found: dict[Place, int] = {}
        for kind, ids in _by_kind(places).items():
            column = placement_column(kind)
            counts = await self._counts(column, column.in_(ids), ImagePlacement)
            found.update({Place(kind, k): v for k, v in counts.items()})
        return found

    async def ping(self) -> None:
        await self._all(text("SELECT 1"))


def _grouped(pairs: Any) -> dict[Any, list[Any]]:
    grouped: dict[Any, list[Any]] = defaultdict(list)
    for key, value in pairs:
        grouped[key].append(value)
    return dict(grouped)
