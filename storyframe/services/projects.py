"""Projects and their videos: creating, renaming, deleting."""

from __future__ import annotations

from storyframe.db.tables import NAME_MAX, Context, MainChat, Project, Video
from storyframe.domain.places import PlaceOwner
from storyframe.domain.ports import Doomed, FileReleaser, UnitOfWork
from storyframe.services.deletion import Deleted, doom_files, doom_videos
from storyframe.services.rows import found, renamed
from storyframe.services.validation import clean_name

DEFAULT_MAIN_CHAT_NAME = "Main chat"


class ProjectService:
    def __init__(self, uow: UnitOfWork, files: FileReleaser) -> None:
        self._uow = uow
        self._files = files

    async def create(self, name: str) -> Project:
        cleaned = clean_name(name, "name", NAME_MAX)
        async with self._uow() as repo:
            project = Project(name=cleaned, owner_id=repo.owner_id)
            await repo.add(project)
            await repo.commit()
        return project

    async def rename(self, project_id: int, name: str) -> Project:
        return await renamed(self._uow, Project, project_id, "project", name)

    async def delete(self, project_id: int) -> Deleted:
        async with self._uow() as repo:
            await found(repo, Project, project_id, "project")
            # An image going into its gallery is in, or waits until the project is gone.
            await repo.lock_owner(PlaceOwner(project_id, None))
            doomed = Doomed(projects={project_id})
            await doom_videos(repo, doomed, await repo.video_ids_of_project(project_id))
            doomed.images |= await repo.image_ids_of_project(project_id)
            await doom_files(repo, doomed)
            await repo.delete(doomed)
            await repo.commit()
        await self._files.release(doomed.storage_keys)
        return Deleted.of(doomed)


class VideoService:
    def __init__(self, uow: UnitOfWork, files: FileReleaser) -> None:
        self._uow = uow
        self._files = files

    async def create(self, project_id: int, name: str) -> Video:
        """A new video, with its context and a default main chat."""
        cleaned = clean_name(name, "name", NAME_MAX)
        async with self._uow() as repo:
            await found(repo, Project, project_id, "project", "projectId")
            video = Video(project_id=project_id, name=cleaned)
            await repo.add(video)
            assert video.id is not None
            await repo.add(Context(video_id=video.id))
            await repo.add(MainChat(video_id=video.id, name=DEFAULT_MAIN_CHAT_NAME))
            await repo.commit()
        return video

    async def rename(self, video_id: int, name: str) -> Video:
        return await renamed(self._uow, Video, video_id, "video", name)

    async def delete(self, video_id: int) -> Deleted:
        async with self._uow() as repo:
            await found(repo, Video, video_id, "video")
            doomed = Doomed()
            await doom_videos(repo, doomed, {video_id})
            await doom_files(repo, doomed)
            await repo.delete(doomed)
            await repo.commit()
        await self._files.release(doomed.storage_keys)
        return Deleted.of(doomed)
