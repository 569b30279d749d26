"""The services one request runs with, built from the app's ports."""

from __future__ import annotations

from dataclasses import dataclass

from storyframe.domain.ports import Reader, UnitOfWork
from storyframe.services.chats import ChatService, ContextService, MainChatService
from storyframe.services.diagnostic_runs import Diagnostician, DiagnosticRuns
from storyframe.services.export.requests import Exporter
from storyframe.services.export.service import ExportService
from storyframe.services.frames import FrameService
from storyframe.services.generation import GenerationService, Generator
from storyframe.services.image_places import ImageService
from storyframe.services.limits import ListLimits
from storyframe.services.media import Media
from storyframe.services.projects import ProjectService, VideoService
from storyframe.services.uploads import UploadService


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
    exports: ExportService
    diagnostics: DiagnosticRuns
    reads: Reader

    @classmethod
    def build(
        cls,
        uow: UnitOfWork,
        reader: Reader,
        media: Media,
        generator: Generator,
        limits: ListLimits,
        exporter: Exporter,
        diagnostician: Diagnostician,
    ) -> Services:
        files = media.files
        images = ImageService(uow, files, limits)
        return cls(
            projects=ProjectService(uow, files),
            videos=VideoService(uow, files),
            contexts=ContextService(uow),
            frames=FrameService(uow, files, limits),
            main_chats=MainChatService(uow, files, limits),
            chats=ChatService(uow, files),
            images=images,
            uploads=UploadService(images, media),
            generation=GenerationService(uow, generator),
            exports=ExportService(uow, exporter),
            diagnostics=DiagnosticRuns(uow, diagnostician),
            reads=reader,
        )
