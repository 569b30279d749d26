"""Services over one FakeUnitOfWork, and the scenes the unit tests start from."""

from __future__ import annotations

from dataclasses import dataclass

from storyframe.db.tables import Context, MainChat, Message
from storyframe.domain.places import Place, PlaceKind
from storyframe.services.chats import ChatService, ContextService, MainChatService
from storyframe.services.frames import FrameService
from storyframe.services.image_places import ImageService
from storyframe.services.limits import ListLimits
from storyframe.services.projects import ProjectService, VideoService
from tests.support.fakes import FakeUnitOfWork, RecordingReleaser
from tests.support.ids import known
from tests.support.images import stored_image
from tests.support.seeds import Seeds


@dataclass(frozen=True, slots=True)
class Domain:
    """Every service, sharing one fake unit of work."""

    uow: FakeUnitOfWork
    files: RecordingReleaser
    projects: ProjectService
    videos: VideoService
    contexts: ContextService
    frames: FrameService
    main_chats: MainChatService
    chats: ChatService
    images: ImageService
    seeds: Seeds


def domain(limits: ListLimits | None = None) -> Domain:
    """Every service over one new fake unit of work, with `limits` (the defaults if None)."""
    limits = limits or ListLimits()
    uow = FakeUnitOfWork()
    files = RecordingReleaser()
    return Domain(
        uow=uow,
        files=files,
        projects=ProjectService(uow, files),
        videos=VideoService(uow, files),
        contexts=ContextService(uow),
        frames=FrameService(uow, files, limits),
        main_chats=MainChatService(uow, files, limits),
        chats=ChatService(uow, files),
        images=ImageService(uow, files, limits),
        seeds=Seeds(uow),
    )


@dataclass(frozen=True, slots=True)
class VideoScene:
    project_id: int
    video_id: int
    context: Place
    main_chat: Place

    @property
    def gallery(self) -> Place:
        return Place(PlaceKind.GALLERY, self.project_id)


async def a_project(d: Domain, name: str = "Trip") -> int:
    return known((await d.projects.create(name)).id)


async def a_video(d: Domain, project_id: int | None = None, name: str = "Opening") -> VideoScene:
    """A video (of a new project unless one is given) with its context and main chat."""
    if project_id is None:
        project_id = await a_project(d)
    video_id = known((await d.videos.create(project_id, name)).id)
    (context,) = [c for c in d.uow.all(Context) if c.video_id == video_id]
    (chat,) = [c for c in d.uow.all(MainChat) if c.video_id == video_id]
    return VideoScene(
        project_id=project_id,
        video_id=video_id,
        context=Place(PlaceKind.CONTEXT, known(context.id)),
        main_chat=Place(PlaceKind.MAIN_CHAT, known(chat.id)),
    )


async def a_frame(d: Domain, video_id: int, title: str = "Shot") -> Place:
    return Place(PlaceKind.FRAME, known((await d.frames.create(video_id, title)).id))


async def an_image(d: Domain, place: Place, message_id: int | None = None) -> int:
    """A new image, appearing in `place`."""
    return known((await d.seeds.add_image(place, stored_image(), message_id)).id)


async def a_message(d: Domain, chat: Place, prompt: str = "a red kite") -> int:
    return known((await d.seeds.post_message(chat, prompt)).id)


async def a_generation(d: Domain, chat: Place, images: int = 1) -> tuple[int, list[int]]:
    """A message posted in the chat and the images it produced there."""
    message_id = await a_message(d, chat)
    return message_id, [await an_image(d, chat, message_id) for _ in range(images)]


def message_ids(d: Domain) -> set[int]:
    return {known(m.id) for m in d.uow.all(Message)}
