"""The SQL read side: every method answers a whole batch of keys in one statement per kind.

It answers plain rows (`storyframe.db.reads`), not ORM entities: building an entity and tracking
it costs more than the row, and a list of a storyboard reads thousands. A row has every column of
its table as an attribute, so it is typed as its table's class; it is read-only, and is never
handed to a session."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import BindParameter, ColumnElement, bindparam, func, select, text
from sqlalchemy.sql import Executable
from sqlmodel import SQLModel, col

from storyframe.db.ownership import owned_by
from storyframe.db.places import message_column, placement_column
from storyframe.db.reads import Reads
from storyframe.db.tables import (
    Context,
    Export,
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
from storyframe.domain.ports import GenerationScope, Reader

Row = TypeVar("Row", bound=SQLModel)
Key = TypeVar("Key")


def _by_kind(places: Sequence[Place]) -> dict[PlaceKind, list[int]]:
    grouped: dict[PlaceKind, list[int]] = defaultdict(list)
    for place in places:
        grouped[place.kind].append(place.id)
    return grouped


# Statements are built once, with bound parameters for what changes (`ids`, `owner`, `first`,
# `before`): building one costs more than running it, and a built one is compiled once.


def _ids(name: str = "ids") -> Any:
    return bindparam(name, expanding=True)


_OWNER: BindParameter[int] = bindparam("owner")
_FIRST: BindParameter[int] = bindparam("first")
_BEFORE: BindParameter[int] = bindparam("before")


@cache
def _by_ids(model: type[SQLModel]) -> Executable:
    model_id: Any = model.id  # type: ignore[attr-defined]
    return select(model).where(model_id.in_(_ids()), owned_by(model, _OWNER))


@cache
def _projects(before: bool) -> Executable:
    statement = (
        select(Project)
        .where(owned_by(Project, _OWNER))
        .order_by(col(Project.id).desc())
        .limit(_FIRST)
    )
    return statement.where(col(Project.id) < _BEFORE) if before else statement


@cache
def _top_per_group(
    model: type[SQLModel], group: Any, before: bool, placed: bool = False, in_projects: bool = False
) -> Executable:
    """Up to `first` rows of `model` per value of `group` among `ids`, newest first, each with
    its group (`grp`) and rank as two more columns. `placed` joins the placements (`group` is
    theirs); `in_projects` keeps images of the `projects` only."""
    model_id: Any = model.id  # type: ignore[attr-defined]
    rank = func.row_number().over(partition_by=group, order_by=model_id.desc()).label("rank")
    inner = select(model, group.label("grp"), rank)
    if placed:
        inner = inner.join(ImagePlacement, col(ImagePlacement.image_id) == col(Image.id))
    inner = inner.where(group.in_(_ids()))
    if in_projects:
        inner = inner.where(col(Image.project_id).in_(_ids("projects")))
    if before:
        inner = inner.where(model_id < _BEFORE)
    ranked = inner.subquery()
    return select(ranked).where(ranked.c.rank <= _FIRST).order_by(ranked.c.grp, ranked.c.rank)


@cache
def _of_parents(model: type[SQLModel], parent: Any, *order: Any) -> Executable:
    """The rows of `model` whose `parent` column is among `ids`, in `order`."""
    return select(model).where(parent.in_(_ids())).order_by(*order)


@cache
def _counts(model: type[SQLModel], group: Any) -> Executable:
    return select(group, func.count()).select_from(model).where(group.in_(_ids())).group_by(group)


@cache
def _attachments() -> Executable:
    attached_to = col(MessageAttachment.message_id)
    # The image's own columns, and the message it is attached to as one more.
    return (
        select(Image, attached_to.label("attached_to"))
        .join(Image, col(Image.id) == col(MessageAttachment.image_id))
        .where(attached_to.in_(_ids()))
        .order_by(attached_to, col(MessageAttachment.position))
    )


@cache
def _video_image_counts() -> Executable:
    project, video = col(Image.project_id), col(Image.video_id)
    return select(project, video, func.count()).where(video.in_(_ids())).group_by(project, video)


@cache
def _generations_of_video() -> Executable:
    return (
        select(Generation)
        .where(
            col(Generation.video_id) == bindparam("video"),
            col(Generation.status).in_(_ids("statuses")),
            owned_by(Generation, _OWNER),
        )
        .order_by(col(Generation.id))
    )


def _generations_where(by_project: bool) -> list[Any]:
    video = col(Generation.video_id)
    in_scope: ColumnElement[bool]
    if by_project:
        in_scope = video.in_(select(col(Video.id)).where(col(Video.project_id) == _SCOPE))
    else:
        in_scope = video == _SCOPE
    return [in_scope, col(Generation.status).in_(_ids("statuses")), owned_by(Generation, _OWNER)]


_SCOPE: BindParameter[int] = bindparam("scope")


@cache
def _generations(by_project: bool, before: bool) -> Executable:
    statement = (
        select(Generation)
        .where(*_generations_where(by_project))
        .order_by(col(Generation.id).desc())
        .limit(_FIRST)
    )
    return statement.where(col(Generation.id) < _BEFORE) if before else statement


@cache
def _count_generations(by_project: bool) -> Executable:
    return select(func.count()).select_from(Generation).where(*_generations_where(by_project))


_COUNT_PROJECTS = select(func.count()).select_from(Project).where(owned_by(Project, _OWNER))
_EXPORTS_WHERE = (col(Export.video_id) == _SCOPE, owned_by(Export, _OWNER))
_EXPORTS = select(Export).where(*_EXPORTS_WHERE).order_by(col(Export.id).desc()).limit(_FIRST)
_EXPORTS_BEFORE = _EXPORTS.where(col(Export.id) < _BEFORE)
_COUNT_EXPORTS = select(func.count()).select_from(Export).where(*_EXPORTS_WHERE)


class SqlReader(Reader):
    """Reads on behalf of one user. Rows fetched by id, and the project list, are limited to
    what the user owns; everything else is reached from those rows, so it is theirs too."""

    def __init__(self, reads: Reads, owner_id: int) -> None:
        self._reads = reads
        self._owner_id = owner_id

    async def _all(self, statement: Any, **parameters: Any) -> Sequence[Any]:
        return await self._reads.rows(statement, {"owner": self._owner_id, **parameters})

    async def _rows(self, model: type[Row], statement: Any, **parameters: Any) -> list[Row]:
        """The rows of `statement`, which selects the columns of `model`'s table."""
        return cast("list[Row]", list(await self._all(statement, **parameters)))

    async def _top(
        self,
        model: type[Row],
        group: Any,
        ids: Sequence[int],
        page: PageRequest,
        *,
        placed: bool = False,
        projects: Sequence[int] | None = None,
    ) -> list[tuple[Any, Row]]:
        """(group value, row) pairs: up to `page.first + 1` rows per group, newest first; with
        `projects`, rows of those projects only."""
        before = page.before_id is not None
        statement = _top_per_group(model, group, before, placed, projects is not None)
        rows = await self._all(
            statement,
            ids=list(ids),
            first=page.first + 1,
            before=page.before_id,
            projects=list(projects or ()),
        )
        return [(row.grp, cast(Row, row)) for row in rows]

    async def get_many(self, model: type[Row], ids: Sequence[int]) -> Mapping[int, Row]:
        rows = await self._all(_by_ids(model), ids=list(ids))
        return {row.id: cast(Row, row) for row in rows}

    async def projects(self, page: PageRequest) -> list[Project]:
        statement = _projects(page.before_id is not None)
        return await self._rows(Project, statement, first=page.first + 1, before=page.before_id)

    async def count_projects(self) -> int:
        return int((await self._all(_COUNT_PROJECTS))[0][0])

    async def videos_of_projects(
        self, project_ids: Sequence[int], page: PageRequest
    ) -> Mapping[int, list[Video]]:
        return _grouped(await self._top(Video, col(Video.project_id), project_ids, page))

    async def contexts_of_videos(self, video_ids: Sequence[int]) -> Mapping[int, Context]:
        video_id = col(Context.video_id)
        rows = await self._rows(Context, _of_parents(Context, video_id), ids=list(video_ids))
        return {row.video_id: row for row in rows}

    async def frames_of_videos(self, video_ids: Sequence[int]) -> Mapping[int, list[Frame]]:
        video_id = col(Frame.video_id)
        statement = _of_parents(Frame, video_id, video_id, col(Frame.order))
        rows = await self._rows(Frame, statement, ids=list(video_ids))
        return _grouped((row.video_id, row) for row in rows)

    async def main_chats_of_videos(self, video_ids: Sequence[int]) -> Mapping[int, list[MainChat]]:
        video_id = col(MainChat.video_id)
        statement = _of_parents(MainChat, video_id, video_id, col(MainChat.id))
        rows = await self._rows(MainChat, statement, ids=list(video_ids))
        return _grouped((row.video_id, row) for row in rows)

    async def messages_of_chats(
        self, chats: Sequence[Place], page: PageRequest
    ) -> Mapping[Place, list[Message]]:
        found: dict[Place, list[Message]] = {}
        for kind, ids in _by_kind(chats).items():
            pairs = await self._top(Message, message_column(kind), ids, page)
            found.update({Place(kind, k): v for k, v in _grouped(pairs).items()})
        return found

    async def images_of_messages(self, message_ids: Sequence[int]) -> Mapping[int, list[Image]]:
        message_id = col(Image.message_id)
        statement = _of_parents(Image, message_id, message_id, col(Image.id))
        rows = await self._rows(Image, statement, ids=list(message_ids))
        return _grouped((row.message_id, row) for row in rows)

    async def generations_of_messages(self, message_ids: Sequence[int]) -> Mapping[int, Generation]:
        statement = _of_parents(Generation, col(Generation.message_id))
        rows = await self._rows(Generation, statement, ids=list(message_ids))
        return {row.message_id: row for row in rows}

    async def generations_of_video(
        self, video_id: int, statuses: Sequence[str]
    ) -> list[Generation]:
        statement = _generations_of_video()
        return await self._rows(Generation, statement, video=video_id, statuses=list(statuses))

    async def generations(
        self, scope: GenerationScope, statuses: Sequence[str], page: PageRequest
    ) -> list[Generation]:
        statement = _generations(scope.by_project, page.before_id is not None)
        return await self._rows(
            Generation,
            statement,
            scope=scope.id,
            statuses=list(statuses),
            first=page.first + 1,
            before=page.before_id,
        )

    async def count_generations(self, scope: GenerationScope, statuses: Sequence[str]) -> int:
        statement = _count_generations(scope.by_project)
        rows = await self._all(statement, scope=scope.id, statuses=list(statuses))
        return int(rows[0][0])

    async def exports(self, video_id: int, page: PageRequest) -> list[Export]:
        statement = _EXPORTS if page.before_id is None else _EXPORTS_BEFORE
        return await self._rows(
            Export, statement, scope=video_id, first=page.first + 1, before=page.before_id
        )

    async def count_exports(self, video_id: int) -> int:
        return int((await self._all(_COUNT_EXPORTS, scope=video_id))[0][0])

    async def attachments_of_messages(
        self, message_ids: Sequence[int]
    ) -> Mapping[int, list[Image]]:
        rows = await self._all(_attachments(), ids=list(message_ids))
        return _grouped((row.attached_to, cast(Image, row)) for row in rows)

    async def images_of_places(
        self, places: Sequence[Place], page: PageRequest
    ) -> Mapping[Place, list[Image]]:
        found: dict[Place, list[Image]] = {}
        for kind, ids in _by_kind(places).items():
            pairs = await self._top(Image, placement_column(kind), ids, page, placed=True)
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
            pairs = await self._top(Image, col(Image.project_id), whole, page)
            found.update({(k, None): v for k, v in _grouped(pairs).items()})
        if by_video:
            projects = sorted(set().union(*by_video.values()))
            videos, column = list(by_video), col(Image.video_id)
            pairs = await self._top(Image, column, videos, page, projects=projects)
            for video, images in _grouped(pairs).items():
                for project in by_video[video]:
                    found[(project, video)] = [i for i in images if i.project_id == project]
        return found

    async def places_of_images(self, image_ids: Sequence[int]) -> Mapping[int, list[Place]]:
        image_id = col(ImagePlacement.image_id)
        statement = _of_parents(ImagePlacement, image_id, col(ImagePlacement.id))
        rows = await self._rows(ImagePlacement, statement, ids=list(image_ids))
        return _grouped((row.image_id, place_named_by(row)) for row in rows)

    async def _count(self, model: type[SQLModel], group: Any, ids: Sequence[Any]) -> dict[Any, int]:
        rows = await self._all(_counts(model, group), ids=list(ids))
        return {key: int(count) for key, count in rows}

    async def count_videos(self, project_ids: Sequence[int]) -> Mapping[int, int]:
        return await self._count(Video, col(Video.project_id), project_ids)

    async def count_project_images(
        self, keys: Sequence[tuple[int, int | None]]
    ) -> Mapping[tuple[int, int | None], int]:
        whole = [project for project, video in keys if video is None]
        videos = [video for _, video in keys if video is not None]
        found: dict[tuple[int, int | None], int] = {}
        if whole:
            counts = await self._count(Image, col(Image.project_id), whole)
            found.update({(k, None): v for k, v in counts.items()})
        if videos:
            rows = await self._all(_video_image_counts(), ids=videos)
            found.update({(p, v): int(n) for p, v, n in rows})
        return found

    async def count_frames(self, video_ids: Sequence[int]) -> Mapping[int, int]:
        return await self._count(Frame, col(Frame.video_id), video_ids)

    async def count_messages(self, chats: Sequence[Place]) -> Mapping[Place, int]:
        return await self._count_by_place(Message, message_column, chats)

    async def count_place_images(self, places: Sequence[Place]) -> Mapping[Place, int]:
        return await self._count_by_place(ImagePlacement, placement_column, places)

    async def _count_by_place(
        self, model: type[SQLModel], column: Callable[[PlaceKind], Any], places: Sequence[Place]
    ) -> dict[Place, int]:
        """How many `model` rows name each place in their `column` of its kind: one statement
        per kind of place."""
        found: dict[Place, int] = {}
        for kind, ids in _by_kind(places).items():
            counts = await self._count(model, column(kind), ids)
            found.update({Place(kind, k): v for k, v in counts.items()})
        return found

    async def ping(self) -> None:
        await self._all(text("SELECT 1"))


def _grouped(pairs: Any) -> dict[Any, list[Any]]:
    grouped: dict[Any, list[Any]] = defaultdict(list)
    for key, value in pairs:
        grouped[key].append(value)
    return dict(grouped)
