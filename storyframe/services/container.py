"""The services one app instance runs with, built from its ports."""

from __future__ import annotations

from dataclasses import dataclass

from storyframe.services.chats import ChatService, ContextService, MainChatService
from storyframe.services.frames import FrameService
from storyframe.services.images import ImageService
from storyframe.services.ports import Reader, UnitOfWork
from storyframe.services.projects import ProjectService, VideoService


@dataclass(frozen=True, slots=True)
class Services:
    projects: ProjectService
    videos: VideoService
    contexts: ContextService
    frames: FrameService
    main_chats: MainChatService
    chats: ChatService
    images: ImageService
    reads: Reader

    @classmethod
    def build(cls, uow: UnitOfWork, reader: Reader) -> Services:
        return cls(
            projects=ProjectService(uow),
            videos=VideoService(uow),
            contexts=ContextService(uow),
            frames=FrameService(uow),
            main_chats=MainChatService(uow),
            chats=ChatService(uow),
            images=ImageService(uow),
            reads=reader,
        )
