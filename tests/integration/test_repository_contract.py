"""The `Repository` contract: one set of cases run against the fake repository the unit tests
use (`tests.support.fakes`) and the SQL repository on SQLite and on PostgreSQL, so that what the
services' unit tests learn on the fake holds on the databases.

Each case builds its rows through the repository itself, and reads the outcome back in a later
unit of work, as a service would in its next request.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from sqlalchemy.orm.exc import StaleDataError

from storyframe.db.accounts import SqlAccountStore
from storyframe.db.engine import create_engine, session_factory
from storyframe.db.reads import Reads
from storyframe.db.repository import SqlUnitOfWork
from storyframe.db.tables import (
    Context,
    Frame,
    Generation,
    Image,
    MainChat,
    Message,
    Project,
    Video,
)
from storyframe.domain.places import Place, PlaceKind, PlaceOwner
from storyframe.domain.ports import Doomed, Repository
from tests.support.fakes import FAKE_OWNER_ID, ConstraintViolation, FakeUnitOfWork

IMPLEMENTATIONS = ["fake", "sqlite", "postgresql"]
REFUSED = (ConstraintViolation, IntegrityError)
"""What a write the schema's constraints forbid raises: the fake's error, or the driver's."""
GONE = (ConstraintViolation, InvalidRequestError, StaleDataError)
"""What writing back a row deleted since it was read raises: the fake's error, or the ORM's
(the session knows of the deletion, or the UPDATE matched no row)."""

Stored = Project | Video | Context | Frame | MainChat | Message | Image | Generation
RowKey = tuple[type[Stored], int]
Transaction = AbstractAsyncContextManager[Repository]

_keys = itertools.count(1)


@pytest.fixture(params=IMPLEMENTATIONS)
def dialect(request: pytest.FixtureRequest) -> str:
    """The implementation under test: the fake, or the SQL repository on a dialect (for which
    `database_url` gives an empty, migrated database)."""
    return str(request.param)


@dataclass(frozen=True)
class Backend:
    """Units of work of one implementation, on behalf of either of two users."""

    open: Callable[[int], Transaction]
    owner: int
    stranger: int

    def __call__(self, owner: int | None = None) -> Transaction:
        """A unit of work for `owner` (the first user when None)."""
        return self.open(self.owner if owner is None else owner)


@pytest.fixture
def sql_database_url(dialect: str, request: pytest.FixtureRequest) -> str | None:
    """An empty, migrated database for the SQL implementations; None for the fake."""
    return None if dialect == "fake" else str(request.getfixturevalue("database_url"))


@pytest.fixture
async def backend(sql_database_url: str | None) -> AsyncIterator[Backend]:
    if sql_database_url is None:
        uow = FakeUnitOfWork()
        yield Backend(lambda owner: uow(owner_id=owner), FAKE_OWNER_ID, FAKE_OWNER_ID + 1)
        return
    engine = create_engine(sql_database_url)
    try:
        sessions = session_factory(engine)
        accounts = SqlAccountStore(sessions, Reads(engine))
        owner = await accounts.add_user("owner@storyframe.test", "not a real hash")
        stranger = await accounts.add_user("stranger@storyframe.test", "not a real hash")
        assert owner is not None
        assert owner.id is not None
        assert stranger is not None
        assert stranger.id is not None
        yield Backend(lambda user: SqlUnitOfWork(sessions, user)(), owner.id, stranger.id)
    finally:
        await engine.dispose()


async def added(repo: Repository, row: Stored) -> int:
    """Add the row; its new id."""
    await repo.add(row)
    assert row.id is not None
    return row.id


def an_image(project_id: int, video_id: int | None = None, message_id: int | None = None) -> Image:
    key = f"{next(_keys):02x}/image.png"
    return Image(
        project_id=project_id,
        video_id=video_id,
        message_id=message_id,
        url=f"https://media.test/{key}",
        storage_key=key,
        width=640,
        height=480,
        content_type="image/png",
        byte_size=1024,
    )


def a_generation(message_id: int, video_id: int, status: str = "QUEUED") -> Generation:
    return Generation(
        message_id=message_id,
        video_id=video_id,
        status=status,
        provider="placeholder",
        model="placeholder",
        size="1024x1024",
        quality="auto",
        requested_count=2,
    )


@dataclass(frozen=True)
class Scene:
    """A project with one video: its context, a main chat and three frames (orders 0, 1, 2).
    The first frame holds a message, with its QUEUED generation and the image it made (placed
    in that frame and selected by it); an uploaded image is in the gallery and the context, and
    attached to the message."""

    project: int
    video: int
    context: int
    main_chat: int
    frames: tuple[int, int, int]
    message: int
    generation: int
    made: int
    upload: int

    @property
    def gallery_place(self) -> Place:
        return Place(PlaceKind.GALLERY, self.project)

    @property
    def context_place(self) -> Place:
        return Place(PlaceKind.CONTEXT, self.context)

    @property
    def main_chat_place(self) -> Place:
        return Place(PlaceKind.MAIN_CHAT, self.main_chat)

    def frame_place(self, index: int = 0) -> Place:
        return Place(PlaceKind.FRAME, self.frames[index])

    def rows(self) -> list[RowKey]:
        """Every row of the scene, by model."""
        return [
            (Project, self.project),
            (Video, self.video),
            (Context, self.context),
            (MainChat, self.main_chat),
            *((Frame, frame) for frame in self.frames),
            (Message, self.message),
            (Generation, self.generation),
            (Image, self.made),
            (Image, self.upload),
        ]


async def a_scene(backend: Backend, owner: int | None = None, name: str = "Trip") -> Scene:
    async with backend(owner) as repo:
        project = await added(repo, Project(name=name, owner_id=repo.owner_id))
        video = await added(repo, Video(project_id=project, name="Opening"))
        context = await added(repo, Context(video_id=video, content="A harbour at dusk."))
        main_chat = await added(repo, MainChat(video_id=video, name="Ideas"))
        first, second, third = [
            await added(repo, Frame(video_id=video, title=f"Shot {order}", order=order))
            for order in range(3)
        ]
        upload = await added(repo, an_image(project))
        message = await added(repo, Message(video_id=video, frame_id=first, prompt="a kite"))
        await repo.add_attachments(message, [upload])
        generation = await added(repo, a_generation(message, video))
        made = await added(repo, an_image(project, video, message))
        await repo.add_placement(made, Place(PlaceKind.FRAME, first))
        await repo.add_placement(upload, Place(PlaceKind.GALLERY, project))
        await repo.add_placement(upload, Place(PlaceKind.CONTEXT, context))
        frame = await repo.get(Frame, first)
        assert frame is not None
        frame.selected_image_id = made
        await repo.save(frame)
        await repo.commit()
    return Scene(
        project,
        video,
        context,
        main_chat,
        (first, second, third),
        message,
        generation,
        made,
        upload,
    )


async def committed(backend: Backend, write: Callable[[Repository], Awaitable[object]]) -> None:
    """Write in a unit of work of the first user, and commit."""
    async with backend() as repo:
        await write(repo)
        await repo.commit()


async def present(repo: Repository, rows: list[RowKey]) -> set[RowKey]:
    """The rows (model and id) among `rows` that the repository finds."""
    return {(model, id_) for model, id_ in rows if await repo.get(model, id_) is not None}


async def selection(repo: Repository, frame_id: int) -> int | None:
    frame = await repo.get(Frame, frame_id)
    assert frame is not None
    return frame.selected_image_id


# get, add, save, commit


async def test_added_rows_get_ids_and_are_read_back_after_commit(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)

    # when
    async with backend() as repo:
        project = await repo.get(Project, scene.project)
        frame = await repo.get(Frame, scene.frames[2])
        message = await repo.get(Message, scene.message)
        image = await repo.get(Image, scene.made)

    # then
    assert project is not None
    assert project.name == "Trip"
    assert project.owner_id == backend.owner
    assert frame is not None
    assert (frame.video_id, frame.order) == (scene.video, 2)
    assert message is not None
    assert (message.frame_id, message.context_id, message.main_chat_id) == (
        scene.frames[0],
        None,
        None,
    )
    assert image is not None
    assert (image.project_id, image.video_id, image.message_id) == (
        scene.project,
        scene.video,
        scene.message,
    )


async def test_get_of_an_id_that_names_nothing_is_none(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)

    # when
    async with backend() as repo:
        found = [await repo.get(model, id_ + 1000) for model, id_ in scene.rows()]

    # then
    assert found == [None] * len(scene.rows())


async def test_work_not_committed_is_rolled_back(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)

    # when one unit of work ends without committing, and another raises before it commits
    async with backend() as repo:
        draft = await added(repo, Project(name="Draft", owner_id=repo.owner_id))
        video = await repo.get(Video, scene.video)
        assert video is not None
        video.name = "Renamed"
        await repo.save(video)

    async def work_that_fails() -> None:
        async with backend() as repo:
            await repo.delete(Doomed(projects={scene.project}))
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await work_that_fails()

    # then
    async with backend() as repo:
        assert await repo.get(Project, draft) is None
        kept = await repo.get(Video, scene.video)
        assert kept is not None
        assert kept.name == "Opening"
        assert await present(repo, scene.rows()) == set(scene.rows())


async def test_save_writes_the_changes_of_a_loaded_row(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)

    # when
    async with backend() as repo:
        context = await repo.get(Context, scene.context)
        assert context is not None
        context.content = "A storm over the harbour."
        await repo.save(context)
        await repo.commit()

    # then
    async with backend() as repo:
        stored = await repo.get(Context, scene.context)
    assert stored is not None
    assert stored.content == "A storm over the harbour."


async def test_work_after_a_commit_is_rolled_back_unless_committed_again(
    backend: Backend,
) -> None:
    # given
    scene = await a_scene(backend)

    # when
    async with backend() as repo:
        kept = await added(repo, MainChat(video_id=scene.video, name="Kept"))
        await repo.commit()
        dropped = await added(repo, MainChat(video_id=scene.video, name="Dropped"))

    # then
    async with backend() as repo:
        chats = await repo.main_chat_ids_of_videos([scene.video])
    assert chats == {scene.main_chat, kept}
    assert dropped not in chats


async def test_saving_a_row_deleted_earlier_in_the_unit_of_work_is_refused(
    backend: Backend,
) -> None:
    # given
    scene = await a_scene(backend)

    async def save_after_deleting() -> None:
        async with backend() as repo:
            frame = await repo.get(Frame, scene.frames[1])
            assert frame is not None
            await repo.delete(Doomed(frames={scene.frames[1]}))
            frame.title = "Changed"
            await repo.save(frame)
            await repo.commit()

    # when
    with pytest.raises(GONE):
        await save_after_deleting()

    # then nothing was written
    async with backend() as repo:
        frame = await repo.get(Frame, scene.frames[1])
    assert frame is not None
    assert frame.title == "Shot 1"


async def test_saving_a_row_another_unit_of_work_deleted_is_refused(backend: Backend) -> None:
    # given a frame read, then deleted by another unit of work
    scene = await a_scene(backend)
    first, second, third = scene.frames
    async with backend() as repo:
        frame = await repo.get(Frame, second)
    assert frame is not None
    await committed(backend, lambda repo: repo.delete(Doomed(frames={second})))
    frame.title = "Changed"

    # when
    with pytest.raises(GONE):
        await committed(backend, lambda repo: repo.save(frame))

    # then it is not written back
    async with backend() as repo:
        assert await repo.get(Frame, second) is None
        assert [f.id for f in await repo.frames_of_video(scene.video)] == [first, third]


async def test_a_generation_keeps_its_errors_usage_and_times(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)
    finished = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    errors: list[dict[str, object]] = [
        {"index": None, "code": "PROVIDER_ERROR", "message": "no description"},
        {"index": 1, "code": "CONTENT_REFUSED", "message": "refused"},
    ]

    # when
    async with backend() as repo:
        generation = await repo.get(Generation, scene.generation)
        assert generation is not None
        generation.status, generation.completed_count = "PARTIAL", 1
        generation.errors = errors
        generation.output_tokens, generation.estimated_cost_usd = 1056, 0.03168
        generation.finished_at = finished
        await repo.save(generation)
        await repo.commit()

    # then
    async with backend() as repo:
        stored = await repo.get(Generation, scene.generation)
    assert stored is not None
    assert (stored.status, stored.completed_count, stored.errors) == ("PARTIAL", 1, errors)
    assert (stored.output_tokens, stored.estimated_cost_usd) == (1056, 0.03168)
    assert stored.finished_at == finished


# what the schema refuses


DANGLING: dict[str, Callable[[Scene], Stored]] = {
    "video of a missing project": lambda s: Video(project_id=s.project + 1000, name="Orphan"),
    "context of a missing video": lambda s: Context(video_id=s.video + 1000),
    "frame of a missing video": lambda s: Frame(video_id=s.video + 1000, title="A", order=9),
    "frame selecting a missing image": lambda s: Frame(
        video_id=s.video, title="A", order=9, selected_image_id=s.made + 1000
    ),
    "main chat of a missing video": lambda s: MainChat(video_id=s.video + 1000, name="A"),
    "message in a missing frame": lambda s: Message(
        video_id=s.video, frame_id=s.frames[0] + 1000, prompt="p"
    ),
    "message in a missing main chat": lambda s: Message(
        video_id=s.video, main_chat_id=s.main_chat + 1000, prompt="p"
    ),
    "image of a missing project": lambda s: an_image(s.project + 1000),
    "image made by a missing message": lambda s: an_image(s.project, s.video, s.message + 1000),
    "generation of a missing message": lambda s: a_generation(s.message + 1000, s.video),
    "generation of a missing video": lambda s: a_generation(s.message, s.video + 1000),
}


@pytest.mark.parametrize("row", DANGLING.values(), ids=DANGLING.keys())
async def test_a_row_naming_a_missing_row_is_refused(
    backend: Backend, row: Callable[[Scene], Stored]
) -> None:
    # given
    scene = await a_scene(backend)
    before = await _counts(backend, scene)

    # when
    with pytest.raises(REFUSED):
        await committed(backend, lambda repo: repo.add(row(scene)))

    # then
    assert await _counts(backend, scene) == before


DUPLICATES: dict[str, Callable[[Scene], Stored]] = {
    "two frames of a video at one order": lambda s: Frame(video_id=s.video, title="B", order=1),
    "a second context of a video": lambda s: Context(video_id=s.video),
    "a message in no chat": lambda s: Message(video_id=s.video, prompt="p"),
    "a message in two chats": lambda s: Message(
        video_id=s.video, frame_id=s.frames[0], context_id=s.context, prompt="p"
    ),
    "a second generation of a message": lambda s: a_generation(s.message, s.video),
}


@pytest.mark.parametrize("row", DUPLICATES.values(), ids=DUPLICATES.keys())
async def test_a_row_breaking_a_unique_or_check_constraint_is_refused(
    backend: Backend, row: Callable[[Scene], Stored]
) -> None:
    # given
    scene = await a_scene(backend)
    before = await _counts(backend, scene)

    # when
    with pytest.raises(REFUSED):
        await committed(backend, lambda repo: repo.add(row(scene)))

    # then
    assert await _counts(backend, scene) == before


async def _counts(backend: Backend, scene: Scene) -> tuple[int | None, ...]:
    """The video's context, and how many frames, main chats and messages the video has, and
    images and videos its project has: what the refused writes above would change."""
    async with backend() as repo:
        context = await repo.context_of_video(scene.video)
        return (
            context.id if context is not None else None,
            len(await repo.frame_ids_of_videos([scene.video])),
            len(await repo.main_chat_ids_of_videos([scene.video])),
            len(await repo.message_ids_of_videos([scene.video])),
            len(await repo.image_ids_of_project(scene.project)),
            len(await repo.video_ids_of_project(scene.project)),
        )


# owner scoping


async def test_another_users_rows_are_invisible(backend: Backend) -> None:
    # given
    theirs = await a_scene(backend, backend.stranger, "Theirs")

    # when
    async with backend() as repo:
        seen_by_owner = await present(repo, theirs.rows())
        places = [
            await repo.owner_of(place)
            for place in (
                theirs.gallery_place,
                theirs.context_place,
                theirs.main_chat_place,
                theirs.frame_place(),
            )
        ]
        context = await repo.context_of_video(theirs.video)
        locked = await repo.lock_images([theirs.made, theirs.upload], exclusive=False)
        locked_exclusively = await repo.lock_images([theirs.made], exclusive=True)
        placing = await repo.lock_image_places(theirs.upload)
    async with backend(backend.stranger) as repo:
        seen_by_stranger = await present(repo, theirs.rows())

    # then
    assert seen_by_owner == set()
    assert places == [None] * 4
    assert context is None
    assert locked == locked_exclusively == set()
    assert placing is False
    assert seen_by_stranger == set(theirs.rows())


async def test_another_users_generation_cannot_be_started(backend: Backend) -> None:
    # given
    theirs = await a_scene(backend, backend.stranger, "Theirs")

    # when
    async with backend() as repo:
        started = await repo.start_generation(theirs.generation, datetime.now(UTC))
        await repo.commit()

    # then
    async with backend(backend.stranger) as repo:
        generation = await repo.get(Generation, theirs.generation)
    assert started is False
    assert generation is not None
    assert (generation.status, generation.started_at) == ("QUEUED", None)


async def test_each_user_sees_their_own_rows_side_by_side(backend: Backend) -> None:
    # given
    mine = await a_scene(backend, name="Mine")
    theirs = await a_scene(backend, backend.stranger, "Theirs")

    # when
    async with backend() as repo:
        my_rows = await present(repo, mine.rows())
        their_rows = await present(repo, theirs.rows())
        owner = await repo.owner_of(mine.frame_place(1))

    # then
    assert my_rows == set(mine.rows())
    assert their_rows == set()
    assert owner == PlaceOwner(mine.project, mine.video)


# locks


async def test_lock_images_returns_the_images_found(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)
    missing = scene.made + 1000

    # when
    async with backend() as repo:
        shared = await repo.lock_images([scene.upload, missing, scene.made], exclusive=False)
        exclusive = await repo.lock_images({scene.made, missing}, exclusive=True)
        none = await repo.lock_images([], exclusive=True)

    # then
    assert shared == {scene.upload, scene.made}
    assert exclusive == {scene.made}
    assert none == set()


async def test_lock_image_places_says_whether_the_image_is_there(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)

    # when
    async with backend() as repo:
        there = await repo.lock_image_places(scene.made)
        gone = await repo.lock_image_places(scene.made + 1000)

    # then
    assert (there, gone) == (True, False)


async def test_locking_a_video_or_an_owner_leaves_everything_as_it_was(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)
    before = await _counts(backend, scene)

    # when
    async with backend() as repo:
        await repo.lock_video(scene.video)
        await repo.lock_video(scene.video + 1000)
        await repo.lock_owner(PlaceOwner(scene.project, scene.video))
        await repo.lock_owner(PlaceOwner(scene.project, None))
        await repo.lock_owner(PlaceOwner(scene.project + 1000, None))
        frames = await repo.frames_of_video(scene.video)
        await repo.commit()

    # then
    assert [f.id for f in frames] == list(scene.frames)
    assert await _counts(backend, scene) == before


# frames


async def test_frames_of_a_video_are_in_order_and_only_its_own(backend: Backend) -> None:
    # given frames added out of order, and another video's frames
    scene = await a_scene(backend)
    other = await a_scene(backend, name="Other")
    async with backend() as repo:
        video = await added(repo, Video(project_id=scene.project, name="Second"))
        late = await added(repo, Frame(video_id=video, title="late", order=5))
        early = await added(repo, Frame(video_id=video, title="early", order=-3))
        middle = await added(repo, Frame(video_id=video, title="middle", order=0))
        await repo.commit()

    # when
    async with backend() as repo:
        ordered = [f.id for f in await repo.frames_of_video(video)]
        first = [f.id for f in await repo.frames_of_video(scene.video)]
        none = await repo.frames_of_video(video + 1000)

    # then
    assert ordered == [early, middle, late]
    assert first == list(scene.frames)
    assert set(first).isdisjoint(other.frames)
    assert none == []


async def test_set_frame_orders_renumbers_the_frames_from_zero(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)
    other = await a_scene(backend, name="Other")
    first, second, third = scene.frames

    # when
    async with backend() as repo:
        frames = {f.id: f for f in await repo.frames_of_video(scene.video)}
        await repo.set_frame_orders(scene.video, [frames[third], frames[first], frames[second]])
        inside = [(f.id, f.order) for f in await repo.frames_of_video(scene.video)]
        await repo.commit()

    # then
    async with backend() as repo:
        after = [(f.id, f.order) for f in await repo.frames_of_video(scene.video)]
        untouched = [(f.id, f.order) for f in await repo.frames_of_video(other.video)]
    assert inside == after == [(third, 0), (first, 1), (second, 2)]
    assert untouched == [(frame, order) for order, frame in enumerate(other.frames)]


async def test_set_frame_orders_after_a_deletion_closes_the_gap(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)
    first, second, third = scene.frames

    # when
    async with backend() as repo:
        await repo.delete(Doomed(frames={second}))
        await repo.set_frame_orders(scene.video, await repo.frames_of_video(scene.video))
        await repo.commit()

    # then
    async with backend() as repo:
        after = [(f.id, f.order) for f in await repo.frames_of_video(scene.video)]
    assert after == [(first, 0), (third, 1)]


# places and placements


async def test_owner_of_each_kind_of_place(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)
    in_video = PlaceOwner(scene.project, scene.video)

    # when
    async with backend() as repo:
        owners = {
            place.kind: await repo.owner_of(place)
            for place in (
                scene.gallery_place,
                scene.context_place,
                scene.main_chat_place,
                scene.frame_place(2),
            )
        }
        missing = [
            await repo.owner_of(Place(kind, id_ + 1000))
            for kind, id_ in (
                (PlaceKind.GALLERY, scene.project),
                (PlaceKind.CONTEXT, scene.context),
                (PlaceKind.MAIN_CHAT, scene.main_chat),
                (PlaceKind.FRAME, scene.frames[2]),
            )
        ]

    # then
    assert owners == {
        PlaceKind.GALLERY: PlaceOwner(scene.project, None),
        PlaceKind.CONTEXT: in_video,
        PlaceKind.MAIN_CHAT: in_video,
        PlaceKind.FRAME: in_video,
    }
    assert missing == [None] * 4


async def test_placements_are_added_once_counted_and_removed(backend: Backend) -> None:
    # given the upload in the gallery and the context
    scene = await a_scene(backend)
    chat = scene.main_chat_place

    # when
    async with backend() as repo:
        had = await repo.has_placement(scene.upload, chat)
        await repo.add_placement(scene.upload, chat)
        await repo.add_placement(scene.upload, chat)  # already there: nothing changes
        counted = await repo.count_placements(scene.upload)
        removed = await repo.remove_placement(scene.upload, scene.context_place)
        removed_again = await repo.remove_placement(scene.upload, scene.context_place)
        await repo.commit()

    # then
    async with backend() as repo:
        places = {
            place: await repo.has_placement(scene.upload, place)
            for place in (scene.gallery_place, scene.context_place, chat, scene.frame_place())
        }
        count = await repo.count_placements(scene.upload)
        made_count = await repo.count_placements(scene.made)
        unknown = await repo.count_placements(scene.made + 1000)
    assert had is False
    assert counted == 3
    assert (removed, removed_again) == (True, False)
    assert places == {
        scene.gallery_place: True,
        scene.context_place: False,
        chat: True,
        scene.frame_place(): False,
    }
    assert (count, made_count, unknown) == (2, 1, 0)


@pytest.mark.parametrize("kind", list(PlaceKind), ids=lambda kind: kind.key)
async def test_a_placement_in_a_missing_place_is_refused(backend: Backend, kind: PlaceKind) -> None:
    # given
    scene = await a_scene(backend)
    missing = Place(kind, 1000 + max(scene.project, scene.context, scene.main_chat, *scene.frames))

    # when
    with pytest.raises(REFUSED):
        await committed(backend, lambda repo: repo.add_placement(scene.upload, missing))

    # then
    async with backend() as repo:
        assert await repo.count_placements(scene.upload) == 2


async def test_a_placement_of_a_missing_image_is_refused(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)

    # when
    with pytest.raises(REFUSED):
        await committed(
            backend, lambda repo: repo.add_placement(scene.upload + 1000, scene.main_chat_place)
        )

    # then
    async with backend() as repo:
        assert await repo.has_placement(scene.upload + 1000, scene.main_chat_place) is False


async def test_remove_placements_in_project_leaves_the_image_only_elsewhere(
    backend: Backend,
) -> None:
    # given the upload of project A in A's gallery, context, main chat and second frame
    # (selected there), and in B's gallery and second frame (selected there too)
    a = await a_scene(backend, name="A")
    b = await a_scene(backend, name="B")
    image = a.upload
    async with backend() as repo:
        for place in (a.main_chat_place, a.frame_place(1), b.gallery_place, b.frame_place(1)):
            await repo.add_placement(image, place)
        for frame_id in (a.frames[1], b.frames[1]):
            frame = await repo.get(Frame, frame_id)
            assert frame is not None
            frame.selected_image_id = image
            await repo.save(frame)
        await repo.commit()

    # when
    async with backend() as repo:
        await repo.remove_placements_in_project(image, a.project)
        await repo.commit()

    # then
    async with backend() as repo:
        in_a = [
            await repo.has_placement(image, place)
            for place in (a.gallery_place, a.context_place, a.main_chat_place, a.frame_place(1))
        ]
        in_b = [await repo.has_placement(image, p) for p in (b.gallery_place, b.frame_place(1))]
        count = await repo.count_placements(image)
        selections = [await selection(repo, f) for f in (a.frames[0], a.frames[1], b.frames[1])]
        made_placed = await repo.has_placement(a.made, a.frame_place())
    assert in_a == [False] * 4
    assert in_b == [True, True]
    assert count == 2
    assert selections == [a.made, None, image]
    assert made_placed is True


async def test_unselect_image_clears_that_frames_selection_of_that_image_only(
    backend: Backend,
) -> None:
    # given the first frame selecting the image it made, the second selecting the upload
    scene = await a_scene(backend)
    first, second, _ = scene.frames
    async with backend() as repo:
        frame = await repo.get(Frame, second)
        assert frame is not None
        frame.selected_image_id = scene.upload
        await repo.save(frame)
        await repo.commit()

    # when
    async with backend() as repo:
        await repo.unselect_image(scene.upload, first)  # not its selection
        await repo.unselect_image(scene.made, second)  # not its selection
        await repo.unselect_image(scene.upload, second)
        await repo.commit()

    # then
    async with backend() as repo:
        assert [await selection(repo, f) for f in (first, second)] == [scene.made, None]


# messages: attachments, contexts, generations


async def test_attachments_are_read_in_the_order_attached(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)
    async with backend() as repo:
        extra = await added(repo, an_image(scene.project))
        message = await added(
            repo, Message(video_id=scene.video, main_chat_id=scene.main_chat, prompt="p")
        )

        # when
        await repo.add_attachments(message, [extra, scene.made, scene.upload])
        await repo.commit()

    # then
    async with backend() as repo:
        attached = [image.id for image in await repo.attachments_of(message)]
        first = [image.id for image in await repo.attachments_of(scene.message)]
        none = await repo.attachments_of(scene.message + 1000)
    assert attached == [extra, scene.made, scene.upload]
    assert first == [scene.upload]
    assert none == []


async def test_attaching_an_image_twice_or_a_missing_image_is_refused(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)

    # when
    with pytest.raises(REFUSED):
        await committed(backend, lambda repo: repo.add_attachments(scene.message, [scene.upload]))
    with pytest.raises(REFUSED):
        await committed(
            backend, lambda repo: repo.add_attachments(scene.message, [scene.made + 1000])
        )

    # then
    async with backend() as repo:
        assert [i.id for i in await repo.attachments_of(scene.message)] == [scene.upload]


async def test_context_of_a_video(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)

    # when
    async with backend() as repo:
        context = await repo.context_of_video(scene.video)
        missing = await repo.context_of_video(scene.video + 1000)

    # then
    assert context is not None
    assert (context.id, context.content) == (scene.context, "A harbour at dusk.")
    assert missing is None


async def test_start_generation_starts_a_queued_generation_once(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)
    now = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

    # when
    async with backend() as repo:
        started = await repo.start_generation(scene.generation, now)
        running = await repo.get(Generation, scene.generation)
        again = await repo.start_generation(scene.generation, datetime.now(UTC))
        missing = await repo.start_generation(scene.generation + 1000, now)
        await repo.commit()

    # then
    async with backend() as repo:
        stored = await repo.get(Generation, scene.generation)
    assert (started, again, missing) == (True, False, False)
    assert running is not None
    assert running.status == "RUNNING"
    assert stored is not None
    assert (stored.status, stored.started_at) == ("RUNNING", now)


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED"])
async def test_only_a_queued_generation_starts(backend: Backend, status: str) -> None:
    # given
    scene = await a_scene(backend)
    async with backend() as repo:
        message = await added(
            repo, Message(video_id=scene.video, context_id=scene.context, prompt="p")
        )
        generation = await added(repo, a_generation(message, scene.video, status))
        await repo.commit()

    # when
    async with backend() as repo:
        started = await repo.start_generation(generation, datetime.now(UTC))
        await repo.commit()

    # then
    async with backend() as repo:
        stored = await repo.get(Generation, generation)
    assert started is False
    assert stored is not None
    assert (stored.status, stored.started_at) == (status, None)


# the ids a deletion gathers


async def test_the_ids_of_what_hangs_off_projects_videos_and_messages(backend: Backend) -> None:
    # given two projects, the first with a second video holding a main chat message and its
    # image
    a = await a_scene(backend, name="A")
    b = await a_scene(backend, name="B")
    async with backend() as repo:
        video = await added(repo, Video(project_id=a.project, name="Second"))
        chat = await added(repo, MainChat(video_id=video, name="Chat"))
        message = await added(repo, Message(video_id=video, main_chat_id=chat, prompt="p"))
        image = await added(repo, an_image(a.project, video, message))
        await repo.commit()

    # when
    async with backend() as repo:
        videos = await repo.video_ids_of_project(a.project)
        frames = await repo.frame_ids_of_videos([a.video, video])
        chats = await repo.main_chat_ids_of_videos([video, b.video])
        messages = await repo.message_ids_of_videos([video, b.video])
        project_images = await repo.image_ids_of_project(a.project)
        video_images = await repo.image_ids_of_videos([video, b.video])
        message_images = await repo.image_ids_of_messages([a.message, message])
        keys = await repo.storage_keys_of([a.upload, image, image + 1000])
        made = await repo.get(Image, image)
        upload = await repo.get(Image, a.upload)
        empty = [
            await repo.frame_ids_of_videos([]),
            await repo.main_chat_ids_of_videos([]),
            await repo.message_ids_of_videos([]),
            await repo.image_ids_of_videos([]),
            await repo.image_ids_of_messages([]),
            await repo.storage_keys_of([]),
        ]

    # then
    assert made is not None
    assert upload is not None
    assert videos == {a.video, video}
    assert frames == set(a.frames)
    assert chats == {chat, b.main_chat}
    assert messages == {message, b.message}
    assert project_images == {a.made, a.upload, image}
    assert video_images == {image, b.made}  # an upload belongs to no video
    assert message_images == {a.made, image}
    assert keys == {made.storage_key, upload.storage_key}
    assert empty == [set()] * 6


async def test_the_message_ids_of_each_kind_of_chat(backend: Backend) -> None:
    # given a message in each chat of the video, and in another video's frame
    scene = await a_scene(backend)
    other = await a_scene(backend, name="Other")
    async with backend() as repo:
        in_context = await added(
            repo, Message(video_id=scene.video, context_id=scene.context, prompt="p")
        )
        in_chat = await added(
            repo, Message(video_id=scene.video, main_chat_id=scene.main_chat, prompt="p")
        )
        in_second = await added(
            repo, Message(video_id=scene.video, frame_id=scene.frames[1], prompt="p")
        )
        await repo.commit()

    # when
    async with backend() as repo:
        found = [
            await repo.message_ids_of_chat(chat)
            for chat in (
                scene.frame_place(0),
                scene.frame_place(1),
                scene.frame_place(2),
                scene.context_place,
                scene.main_chat_place,
                other.frame_place(0),
            )
        ]
        with pytest.raises(ValueError, match="gallery"):
            await repo.message_ids_of_chat(scene.gallery_place)

    # then
    assert found == [
        {scene.message},
        {in_second},
        set(),
        {in_context},
        {in_chat},
        {other.message},
    ]


# deletion and what goes with it


async def test_deleting_a_project_takes_everything_of_it(backend: Backend) -> None:
    # given project B's image in A's gallery and A's image in B's gallery and frame
    a = await a_scene(backend, name="A")
    b = await a_scene(backend, name="B")
    async with backend() as repo:
        await repo.add_placement(b.upload, a.gallery_place)
        await repo.add_placement(a.upload, b.gallery_place)
        await repo.add_placement(a.upload, b.frame_place(2))
        await repo.commit()

    # when
    async with backend() as repo:
        await repo.delete(Doomed(projects={a.project}))
        await repo.commit()

    # then
    async with backend() as repo:
        remaining_a = await present(repo, a.rows())
        remaining_b = await present(repo, b.rows())
        b_upload_places = await repo.count_placements(b.upload)
        a_upload_places = await repo.count_placements(a.upload)
        in_b_frame = await repo.has_placement(a.upload, b.frame_place(2))
        attached = await repo.attachments_of(a.message)
        owner = await repo.owner_of(a.context_place)
    assert remaining_a == set()
    assert remaining_b == set(b.rows())
    assert (b_upload_places, a_upload_places, in_b_frame) == (2, 0, False)
    assert attached == []
    assert owner is None


async def test_deleting_a_video_takes_its_chats_messages_images_and_generations(
    backend: Backend,
) -> None:
    # given a second video of the project, whose main chat holds the first video's upload
    scene = await a_scene(backend)
    async with backend() as repo:
        kept = await added(repo, Video(project_id=scene.project, name="Kept"))
        chat = await added(repo, MainChat(video_id=kept, name="Chat"))
        await repo.add_placement(scene.upload, Place(PlaceKind.MAIN_CHAT, chat))
        await repo.commit()
    kept_keys: list[RowKey] = [(Video, kept), (MainChat, chat)]

    # when
    async with backend() as repo:
        await repo.delete(Doomed(videos={scene.video}))
        await repo.commit()

    # then the upload, an image of the project, stays with its places outside the video
    async with backend() as repo:
        remaining = await present(repo, scene.rows())
        kept_rows = await present(repo, kept_keys)
        upload_places = await repo.count_placements(scene.upload)
        in_chat = await repo.has_placement(scene.upload, Place(PlaceKind.MAIN_CHAT, chat))
    assert remaining == {(Project, scene.project), (Image, scene.upload)}
    assert kept_rows == set(kept_keys)
    assert (upload_places, in_chat) == (2, True)  # the gallery and the other video's chat


async def test_deleting_a_frame_takes_its_messages_their_images_and_its_placements(
    backend: Backend,
) -> None:
    # given the image made in the first frame also in the main chat and selected by the second
    scene = await a_scene(backend)
    first, second, _ = scene.frames
    async with backend() as repo:
        await repo.add_placement(scene.made, scene.main_chat_place)
        await repo.add_placement(scene.upload, scene.frame_place(0))
        frame = await repo.get(Frame, second)
        assert frame is not None
        frame.selected_image_id = scene.made
        await repo.save(frame)
        await repo.commit()

    # when
    async with backend() as repo:
        await repo.delete(Doomed(frames={first}))
        await repo.commit()

    # then
    async with backend() as repo:
        remaining = await present(repo, scene.rows())
        chat_has_made = await repo.has_placement(scene.made, scene.main_chat_place)
        upload_places = await repo.count_placements(scene.upload)
        second_selects = await selection(repo, second)
    gone = {
        (Frame, first),
        (Message, scene.message),
        (Generation, scene.generation),
        (Image, scene.made),
    }
    assert remaining == set(scene.rows()) - gone
    assert chat_has_made is False
    assert upload_places == 2  # the gallery and the context, not the deleted frame
    assert second_selects is None


async def test_deleting_a_message_takes_its_images_and_generation_not_its_attachments(
    backend: Backend,
) -> None:
    # given
    scene = await a_scene(backend)

    # when
    async with backend() as repo:
        await repo.delete(Doomed(messages={scene.message}))
        await repo.commit()

    # then
    async with backend() as repo:
        remaining = await present(repo, scene.rows())
        upload_places = await repo.count_placements(scene.upload)
        frame_has_made = await repo.has_placement(scene.made, scene.frame_place())
        selected = await selection(repo, scene.frames[0])
        attached = await repo.attachments_of(scene.message)
        messages = await repo.message_ids_of_chat(scene.frame_place())
    gone = {(Message, scene.message), (Generation, scene.generation), (Image, scene.made)}
    assert remaining == set(scene.rows()) - gone
    assert (upload_places, frame_has_made, selected) == (2, False, None)
    assert (attached, messages) == ([], set())


async def test_deleting_an_image_takes_its_placements_attachments_and_selections(
    backend: Backend,
) -> None:
    # given the upload also selected by the second frame
    scene = await a_scene(backend)
    async with backend() as repo:
        frame = await repo.get(Frame, scene.frames[1])
        assert frame is not None
        frame.selected_image_id = scene.upload
        await repo.save(frame)
        await repo.commit()

    # when
    async with backend() as repo:
        await repo.delete(Doomed(images={scene.upload}))
        await repo.commit()

    # then the message that attached it stays
    async with backend() as repo:
        remaining = await present(repo, scene.rows())
        places = await repo.count_placements(scene.upload)
        attached = await repo.attachments_of(scene.message)
        selections = [await selection(repo, f) for f in scene.frames[:2]]
    assert remaining == set(scene.rows()) - {(Image, scene.upload)}
    assert (places, attached) == (0, [])
    assert selections == [scene.made, None]


async def test_deleting_a_main_chat_takes_its_messages_and_placements(backend: Backend) -> None:
    # given a message in the main chat, with an image it made there, and the upload there too
    scene = await a_scene(backend)
    async with backend() as repo:
        message = await added(
            repo, Message(video_id=scene.video, main_chat_id=scene.main_chat, prompt="p")
        )
        generation = await added(repo, a_generation(message, scene.video))
        image = await added(repo, an_image(scene.project, scene.video, message))
        await repo.add_placement(image, scene.main_chat_place)
        await repo.add_placement(scene.upload, scene.main_chat_place)
        await repo.commit()

    # when
    async with backend() as repo:
        await repo.delete(Doomed(main_chats={scene.main_chat}))
        await repo.commit()

    # then
    async with backend() as repo:
        remaining = await present(repo, scene.rows())
        added_rows = await present(
            repo, [(Message, message), (Generation, generation), (Image, image)]
        )
        upload_places = await repo.count_placements(scene.upload)
        owner = await repo.owner_of(scene.main_chat_place)
    assert remaining == set(scene.rows()) - {(MainChat, scene.main_chat)}
    assert added_rows == set()
    assert (upload_places, owner) == (2, None)


async def test_deleting_what_is_already_gone_changes_nothing(backend: Backend) -> None:
    # given
    scene = await a_scene(backend)

    # when
    async with backend() as repo:
        await repo.delete(Doomed())
        await repo.delete(
            Doomed(
                projects={scene.project + 1000},
                videos={scene.video + 1000},
                frames={scene.frames[2] + 1000},
                main_chats={scene.main_chat + 1000},
                messages={scene.message + 1000},
                images={scene.upload + 1000},
            )
        )
        await repo.commit()

    # then
    async with backend() as repo:
        assert await present(repo, scene.rows()) == set(scene.rows())
