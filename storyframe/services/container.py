"""The services one request runs with, built from the app's ports."""

from __future__ import annotations

from dataclasses import dataclass

from storyframe.services.chats import ChatService, ContextService, MainChatService
from storyframe.services.frames import FrameService
from storyframe.services.generation import GenerationService, Generator
from storyframe.services.images import ImageService
from storyframe.services.imaging import ImageLimits
from storyframe.services.ports import BlobStorage, FileReleaser, Reader, UnitOfWork
from storyframe.services.projects import ProjectService, VideoService
from storyframe.services.uploads import UploadService


@dataclass(frozen=True, slots=True)
class Media:
    """Where image bytes go, and what an upload may be."""

    storage: BlobStorage
    files: FileReleaser
    limits: ImageLimits
    max_files: int


@dataclass(frozen=True, slots=True)
class Services:
    projects: ProjectService
    videos: VideoService
    contexts: ContextService
    frames: FrameService
    main_chats: MainChatService
    chats: ChatService
    images: ImageService
    uploads: UploadService
    generation: GenerationService
    reads: Reader

    @classmethod
    def build(cls, uow: UnitOfWork, reader: Reader, media: Media, generator: Generator) -> Services:
        files = media.files
        images = ImageService(uow, files)
        return cls(
            projects=ProjectService(uow, files),
            videos=VideoService(uow, files),
            contexts=ContextService(uow),
            frames=FrameService(uow, files),
            main_chats=MainChatService(uow, files),
            chats=ChatService(uow, files),
            images=images,
            uploads=UploadService(images, media.storage, files, media.limits, media.max_files),
            generation=GenerationService(uow, generator),
            reads=reader,
        )
