"""In-memory stand-ins for the write side, so services can be tested in milliseconds.

`FakeRepository` behaves like `storyframe.db.repository.SqlRepository` over the schema of
`storyframe.db.tables`: ids are assigned on `add`, foreign keys and unique indexes are checked
on every write, and deleting a row takes with it what the database's `ON DELETE` rules take
(a video its context, frames, main chats, messages, images and generations; a message the images
it made and its generation; an image its placements, attachments and frame selections). It acts
for one user, as the SQL one does: where that one reads only the owner's rows (`get`,
`owner_of`, the locks, `context_of_video`, `start_generation`), rows of another user's projects
are not there. A project built without an owner counts as `FAKE_OWNER_ID`'s.

`FakeUnitOfWork` keeps a committed store; every unit of work works on a copy of it, and only
`commit()` publishes that copy. A unit of work that raises, or ends without committing, leaves
nothing behind.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlmodel import SQLModel

from storyframe.db.places import TABLES, message_column, table_of
from storyframe.db.tables import (
    Context,
    Export,
    Frame,
    Generation,
    Image,
    MainChat,
    Message,
    Project,
    Video,
)
from storyframe.domain.places import Place, PlaceKind, PlaceOwner
from storyframe.domain.ports import Doomed, FileReleaser, Repository, UnitOfWork

Row = TypeVar("Row", bound=SQLModel)
TableRow = Project | Video | Context | Frame | MainChat | Message | Image | Generation | Export

MODELS: tuple[
    type[Project],
    type[Video],
    type[Context],
    type[Frame],
    type[MainChat],
    type[Message],
    type[Image],
    type[Generation],
    type[Export],
] = (Project, Video, Context, Frame, MainChat, Message, Image, Generation, Export)

# ON DELETE CASCADE: deleting a row of the key deletes the rows of `model` whose `column` names it.
_CASCADES: dict[type[SQLModel], tuple[tuple[type[SQLModel], str], ...]] = {
    Project: ((Video, "project_id"), (Image, "project_id")),
    Video: (
        (Context, "video_id"),
        (Frame, "video_id"),
        (MainChat, "video_id"),
        (Message, "video_id"),
        (Image, "video_id"),
        (Generation, "video_id"),
        (Export, "video_id"),
    ),
    Context: ((Message, "context_id"),),
    Frame: ((Message, "frame_id"),),
    MainChat: ((Message, "main_chat_id"),),
    Message: ((Image, "message_id"), (Generation, "message_id")),
    Image: (),
    Generation: (),
    Export: (),
}
# The place a row is, for the placements that cascade with it.
_PLACE_KIND: dict[type[SQLModel], PlaceKind] = {table: kind for kind, table in TABLES.items()}


class ConstraintViolation(Exception):
    """What the database would refuse: a dangling foreign key, a duplicate unique key."""


def table_row(row: SQLModel) -> TableRow:
    if not isinstance(row, MODELS):
        raise TypeError(f"{type(row).__name__} is not a table the fake repository stores")
    return row


def _clone(row: Row) -> Row:
    return type(row)(**row.model_dump())


@dataclass
class FakeStore:
    """The rows of every table, the placements and the attachments."""

    rows: dict[type[SQLModel], dict[int, SQLModel]] = field(
        default_factory=lambda: {model: {} for model in MODELS}
    )
    placements: set[tuple[int, Place]] = field(default_factory=set)
    # (message_id, image_id) → position
    attachments: dict[tuple[int, int], int] = field(default_factory=dict)

    def copy(self) -> FakeStore:
        return FakeStore(
            rows={
                model: {id_: _clone(row) for id_, row in table.items()}
                for model, table in self.rows.items()
            },
            placements=set(self.placements),
            attachments=dict(self.attachments),
        )

    def table(self, model: type[Row]) -> dict[int, Row]:
        """The rows of one table; a model the fake does not store raises KeyError."""
        table: dict[int, Any] = self.rows[model]
        return table

    def get(self, model: type[Row], id: int) -> Row | None:
        return self.table(model).get(id)

    def owner_of(self, place: Place) -> PlaceOwner | None:
        if place.kind is PlaceKind.GALLERY:
            return PlaceOwner(place.id, None) if place.id in self.table(Project) else None
        chat: Any = self.get(table_of(place.kind), place.id)
        if chat is None:
            return None
        video = self.get(Video, chat.video_id)
        return PlaceOwner(video.project_id, chat.video_id) if video is not None else None

    def project_of(self, row: SQLModel) -> int | None:
        """The id of the project a row hangs off (None for a dangling one)."""
        if isinstance(row, Project):
            return row.id
        if isinstance(row, Video | Image):
            return row.project_id
        video = self.get(Video, cast(Any, row).video_id)
        return video.project_id if video is not None else None

    def belongs_to(self, row: SQLModel, owner_id: int) -> bool:
        """Whether the row is of one of the user's projects (an owner-less one is
        `FAKE_OWNER_ID`'s)."""
        project_id = self.project_of(row)
        project = self.get(Project, project_id) if project_id is not None else None
        if project is None:
            return False
        owner = project.owner_id if project.owner_id is not None else FAKE_OWNER_ID
        return owner == owner_id

    def check(self) -> None:
        """Raise ConstraintViolation where the database's constraints would."""
        problems: list[str] = []

        def refers(what: str, model: type[SQLModel], id: int | None, nullable: bool) -> None:
            if id is None:
                if not nullable:
                    problems.append(f"{what} is null")
            elif id not in self.rows[model]:
                problems.append(f"{what} → missing {model.__name__} {id}")

        for video in self.table(Video).values():
            refers(f"video {video.id}.project_id", Project, video.project_id, False)
        contexts_per_video: dict[int, int] = {}
        for context in self.table(Context).values():
            refers(f"context {context.id}.video_id", Video, context.video_id, False)
            contexts_per_video[context.video_id] = contexts_per_video.get(context.video_id, 0) + 1
        problems += [f"video {v} has {n} contexts" for v, n in contexts_per_video.items() if n > 1]
        orders: set[tuple[int, int]] = set()
        for frame in self.table(Frame).values():
            refers(f"frame {frame.id}.video_id", Video, frame.video_id, False)
            refers(f"frame {frame.id}.selected_image_id", Image, frame.selected_image_id, True)
            if (frame.video_id, frame.order) in orders:
                problems.append(f"two frames of video {frame.video_id} at order {frame.order}")
            orders.add((frame.video_id, frame.order))
        for chat in self.table(MainChat).values():
            refers(f"main chat {chat.id}.video_id", Video, chat.video_id, False)
        for message in self.table(Message).values():
            what = f"message {message.id}"
            refers(f"{what}.video_id", Video, message.video_id, False)
            refers(f"{what}.frame_id", Frame, message.frame_id, True)
            refers(f"{what}.context_id", Context, message.context_id, True)
            refers(f"{what}.main_chat_id", MainChat, message.main_chat_id, True)
            chats = (message.frame_id, message.context_id, message.main_chat_id)
            if sum(chat is not None for chat in chats) != 1:
                problems.append(f"{what} is not in exactly one chat")
        for image in self.table(Image).values():
            refers(f"image {image.id}.project_id", Project, image.project_id, False)
            refers(f"image {image.id}.video_id", Video, image.video_id, True)
            refers(f"image {image.id}.message_id", Message, image.message_id, True)
        for image_id, place in self.placements:
            refers(f"placement of image {image_id}", Image, image_id, False)
            if self.owner_of(place) is None:
                problems.append(f"placement of image {image_id} in missing {place}")
        for message_id, image_id in self.attachments:
            refers(f"attachment of message {message_id}", Message, message_id, False)
            refers(f"attachment to message {message_id}", Image, image_id, False)
        generated: set[int] = set()
        for generation in self.table(Generation).values():
            what = f"generation {generation.id}"
            refers(f"{what}.message_id", Message, generation.message_id, False)
            refers(f"{what}.video_id", Video, generation.video_id, False)
            if generation.message_id in generated:
                problems.append(f"message {generation.message_id} has two generations")
            generated.add(generation.message_id)
        if problems:
            raise ConstraintViolation("; ".join(problems))

    def delete(self, model: type[SQLModel], id: int) -> None:
        """Delete one row and, like the schema's ON DELETE rules, what hangs off it."""
        row = self.rows[model].pop(id, None)
        if row is None:
            return
        for child_model, column in _CASCADES[model]:
            children = [
                child_id
                for child_id, child in self.rows[child_model].items()
                if getattr(child, column) == id
            ]
            for child_id in children:
                self.delete(child_model, child_id)
        kind = _PLACE_KIND.get(model)
        if kind is not None:
            self.placements = {(i, p) for i, p in self.placements if p != Place(kind, id)}
        if model is Message:
            self.attachments = {k: v for k, v in self.attachments.items() if k[0] != id}
        if model is Image:
            self.placements = {(i, p) for i, p in self.placements if i != id}
            self.attachments = {k: v for k, v in self.attachments.items() if k[1] != id}
            for frame in self.table(Frame).values():
                if frame.selected_image_id == id:  # ON DELETE SET NULL
                    frame.selected_image_id = None


class FakeExportRows:
    """What the deletions the fakes serve ask of exports (the rest of exporting runs on real
    databases only: its tests are integration tests)."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def file_keys_of_videos(self, video_ids: Iterable[int]) -> set[str]:
        wanted = set(video_ids)
        return {
            key
            for export in self._store.table(Export).values()
            if export.video_id in wanted
            for key in (export.storage_key, export.subtitles_key)
            if key is not None
        }


class RepositoryClosed(Exception):
    """The repository was used after its unit of work ended."""


FAKE_OWNER_ID = 1


class FakeRepository(Repository):
    """The `Repository` protocol over a `FakeStore`, as `SqlRepository` behaves."""

    def __init__(
        self,
        store: FakeStore | None = None,
        next_id: Callable[[type[SQLModel]], int] | None = None,
        on_commit: Callable[[FakeStore], None] | None = None,
        owner_id: int = FAKE_OWNER_ID,
    ) -> None:
        self._store = store if store is not None else FakeStore()
        self._owner_id = owner_id
        sequences: dict[type[SQLModel], itertools.count[int]] = {}
        self._next_id = next_id or (lambda m: next(sequences.setdefault(m, itertools.count(1))))
        self._on_commit = on_commit
        self.closed = False

    @property
    def owner_id(self) -> int:
        return self._owner_id

    @property
    def store(self) -> FakeStore:
        if self.closed:
            raise RepositoryClosed("the unit of work has ended")
        return self._store

    async def get(self, model: type[Row], id: int) -> Row | None:
        row = self.store.get(model, id)
        return row if row is not None and self._owns(row) else None

    def _owns(self, row: SQLModel) -> bool:
        return self.store.belongs_to(row, self._owner_id)

    async def queue_generation(self, generation: Generation) -> None:
        await self.add(generation)

    async def add(self, row: SQLModel) -> None:
        stored = table_row(row)
        table = self.store.table(type(stored))
        if stored.id is None:
            stored.id = self._next_id(type(stored))
        elif stored.id in table:
            raise ConstraintViolation(f"{type(stored).__name__} {stored.id} already exists")
        table[stored.id] = stored
        try:
            self.store.check()
        except ConstraintViolation:
            del table[stored.id]  # the database refuses the INSERT
            raise

    async def save(self, row: SQLModel) -> None:
        stored = table_row(row)
        if stored.id is None:
            await self.add(stored)
            return
        table = self.store.table(type(stored))
        previous = table.get(stored.id)
        if previous is None:  # the database refuses the UPDATE of a row deleted since read
            raise ConstraintViolation(f"{type(stored).__name__} {stored.id} is gone")
        table[stored.id] = stored
        try:
            self.store.check()
        except ConstraintViolation:
            table[stored.id] = previous
            raise

    async def lock_video(self, video_id: int) -> None:
        """Nothing to do: units of work of one FakeUnitOfWork never run concurrently."""
        _ = self.store

    async def lock_owner(self, owner: PlaceOwner) -> None:
        """Nothing to do, as for `lock_video`."""
        _ = self.store

    async def lock_images(self, image_ids: Collection[int], *, exclusive: bool) -> set[int]:
        """The ids found; nothing to lock, as for `lock_video`."""
        images = self.store.table(Image)
        return {i for i in image_ids if i in images and self._owns(images[i])}

    async def lock_image_places(self, image_id: int) -> bool:
        """Whether the image is there; nothing to lock, as for `lock_video`."""
        return await self.get(Image, image_id) is not None

    async def frames_of_video(self, video_id: int) -> list[Frame]:
        frames = [f for f in self.store.table(Frame).values() if f.video_id == video_id]
        return sorted(frames, key=lambda f: f.order)

    async def set_frame_orders(self, video_id: int, frames: Sequence[Frame]) -> None:
        table = self.store.table(Frame)
        # As the SQL: every frame of the video is first moved out of the way (-order - 1), then
        # the frames given are numbered by id; a frame of the video left out stays negative.
        for frame in table.values():
            if frame.video_id == video_id:
                frame.order = -frame.order - 1
        for position, frame in enumerate(frames):
            if frame.id is not None and frame.id in table:
                table[frame.id].order = position
            frame.order = position
        self.store.check()

    async def owner_of(self, place: Place) -> PlaceOwner | None:
        owner = self.store.owner_of(place)
        if owner is None or await self.get(Project, owner.project_id) is None:
            return None
        return owner

    async def has_placement(self, image_id: int, place: Place) -> bool:
        return (image_id, place) in self.store.placements

    async def count_placements(self, image_id: int) -> int:
        return sum(placed_id == image_id for placed_id, _ in self.store.placements)

    async def add_placement(self, image_id: int, place: Place) -> None:
        self.store.placements.add((image_id, place))
        self.store.check()

    async def remove_placement(self, image_id: int, place: Place) -> bool:
        if (image_id, place) not in self.store.placements:
            return False
        self.store.placements.remove((image_id, place))
        return True

    async def remove_placements_in_project(self, image_id: int, project_id: int) -> None:
        store = self.store
        for placed_id, place in list(store.placements):
            owner = store.owner_of(place)
            if placed_id == image_id and owner is not None and owner.project_id == project_id:
                store.placements.remove((placed_id, place))
        videos = await self.video_ids_of_project(project_id)
        for frame in store.table(Frame).values():
            if frame.selected_image_id == image_id and frame.video_id in videos:
                frame.selected_image_id = None

    async def unselect_image(self, image_id: int, frame_id: int) -> None:
        frame = self.store.get(Frame, frame_id)
        if frame is not None and frame.selected_image_id == image_id:
            frame.selected_image_id = None

    async def context_of_video(self, video_id: int) -> Context | None:
        contexts = self.store.table(Context).values()
        return next((c for c in contexts if c.video_id == video_id and self._owns(c)), None)

    async def start_generation(self, generation_id: int, now: datetime) -> bool:
        generation = await self.get(Generation, generation_id)
        if generation is None or generation.status != "QUEUED":
            return False
        generation.status, generation.heartbeat_at = "RUNNING", now
        generation.started_at = generation.started_at or now
        generation.attempts += 1
        return True

    async def generation_for_key(self, key: str) -> Generation | None:
        for generation in self.store.table(Generation).values():
            if generation.owner_id == self._owner_id and generation.idempotency_key == key:
                return generation
        return None

    async def attachments_of(self, message_id: int) -> list[Image]:
        attached = sorted(
            (position, image_id)
            for (message, image_id), position in self.store.attachments.items()
            if message == message_id
        )
        return [cast(Image, self.store.get(Image, image_id)) for _, image_id in attached]

    async def add_attachments(self, message_id: int, image_ids: Sequence[int]) -> None:
        attachments = self.store.attachments
        for position, image_id in enumerate(image_ids):
            if (message_id, image_id) in attachments:
                raise ConstraintViolation(f"image {image_id} already attached to {message_id}")
            attachments[message_id, image_id] = position
        self.store.check()

    def _ids(self, model: type[Row], column: str, values: Iterable[int | None]) -> set[int]:
        wanted = set(values)
        return {
            id_ for id_, row in self.store.table(model).items() if getattr(row, column) in wanted
        }

    async def video_ids_of_project(self, project_id: int) -> set[int]:
        return self._ids(Video, "project_id", [project_id])

    async def frame_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]:
        return self._ids(Frame, "video_id", video_ids)

    async def main_chat_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]:
        return self._ids(MainChat, "video_id", video_ids)

    async def message_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]:
        return self._ids(Message, "video_id", video_ids)

    async def message_ids_of_chat(self, chat: Place) -> set[int]:
        return self._ids(Message, message_column(chat.kind).key, [chat.id])

    async def image_ids_of_project(self, project_id: int) -> set[int]:
        return self._ids(Image, "project_id", [project_id])

    async def image_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]:
        return self._ids(Image, "video_id", video_ids)

    async def image_ids_of_messages(self, message_ids: Iterable[int]) -> set[int]:
        return self._ids(Image, "message_id", message_ids)

    async def storage_keys_of(self, image_ids: Iterable[int]) -> set[str]:
        wanted = set(image_ids)
        images = self.store.table(Image)
        return {images[id_].storage_key for id_ in wanted if id_ in images}

    @property
    def exports(self) -> Any:
        return FakeExportRows(self.store)

    @property
    def runs(self) -> Any:
        raise NotImplementedError("diagnostics runs are tested on real databases")

    async def delete_row(self, row: SQLModel) -> None:
        row_id = getattr(row, "id", None)
        if row_id is not None:
            self.store.delete(type(row), row_id)

    async def delete(self, doomed: Doomed) -> None:
        store = self.store
        for model, ids in (
            (Image, doomed.images),
            (Message, doomed.messages),
            (Frame, doomed.frames),
            (MainChat, doomed.main_chats),
            (Video, doomed.videos),
            (Project, doomed.projects),
        ):
            for id_ in sorted(ids):
                store.delete(model, id_)

    async def commit(self) -> None:
        self.store.check()
        if self._on_commit is not None:
            self._on_commit(self.store)


@dataclass(frozen=True)
class Snapshot:
    """Everything a FakeUnitOfWork has committed, as plain comparable values."""

    rows: dict[str, dict[int, dict[str, Any]]]
    placements: frozenset[tuple[int, Place]]
    attachments: dict[tuple[int, int], int]


class FakeUnitOfWork(UnitOfWork):
    """Units of work over one committed in-memory store. They must not overlap in time: one
    that commits after another has committed since it began raises instead of losing writes."""

    def __init__(self) -> None:
        self._store = FakeStore()
        self._sequences: dict[type[SQLModel], itertools.count[int]] = {}
        self._version = 0
        self.commits = 0

    def __call__(
        self, *, owner_id: int = FAKE_OWNER_ID
    ) -> AbstractAsyncContextManager[FakeRepository]:
        """A unit of work on behalf of `owner_id` (the services' user unless told)."""
        return self._transaction(owner_id)

    @asynccontextmanager
    async def _transaction(self, owner_id: int) -> AsyncIterator[FakeRepository]:
        began_at = self._version

        def publish(store: FakeStore) -> None:
            nonlocal began_at
            if self._version != began_at:
                raise RuntimeError("overlapping units of work are not supported by the fake")
            self._store = store.copy()
            self._version += 1
            began_at = self._version
            self.commits += 1

        repo = FakeRepository(self._store.copy(), self._next_id, publish, owner_id)
        try:
            yield repo
        finally:
            repo.closed = True  # what was not committed is dropped with the repository's copy

    def _next_id(self, model: type[SQLModel]) -> int:
        # Like a PostgreSQL sequence: ids handed out are never reused, even after a rollback.
        return next(self._sequences.setdefault(model, itertools.count(1)))

    # What tests read: the committed state, as copies they can't change it through.

    def get(self, model: type[Row], id: int) -> Row | None:
        row = self._store.get(model, id)
        return _clone(row) if row is not None else None

    def all(self, model: type[Row]) -> list[Row]:
        table = self._store.table(model)
        return [_clone(table[id_]) for id_ in sorted(table)]

    def places_of(self, image_id: int) -> set[Place]:
        return {place for placed_id, place in self._store.placements if placed_id == image_id}

    def images_in(self, place: Place) -> set[int]:
        return {image_id for image_id, placed in self._store.placements if placed == place}

    def attachments_of(self, message_id: int) -> list[int]:
        attached = {i: pos for (m, i), pos in self._store.attachments.items() if m == message_id}
        return sorted(attached, key=lambda image_id: attached[image_id])

    def snapshot(self) -> Snapshot:
        return Snapshot(
            rows={
                model.__name__: {id_: row.model_dump() for id_, row in table.items()}
                for model, table in self._store.rows.items()
            },
            placements=frozenset(self._store.placements),
            attachments=dict(self._store.attachments),
        )


class RecordingReleaser(FileReleaser):
    """Remembers the blob keys services release, in order."""

    def __init__(self) -> None:
        self.released: list[set[str]] = []

    async def release(self, keys: Collection[str]) -> None:
        self.released.append(set(keys))
