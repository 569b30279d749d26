"""The mutations of projects and their videos."""

from __future__ import annotations

import strawberry

from storyframe.resolvers.mutation import deleting, mutation, renaming
from storyframe.schema import inputs
from storyframe.schema.ids import decode_pk
from storyframe.schema.payloads import ProjectPayload, VideoPayload
from storyframe.schema.request_context import Info_


@strawberry.type
class ProjectMutation:
    @mutation("Create a project.")
    async def create_project(self, info: Info_, input: inputs.CreateProjectInput) -> ProjectPayload:
        return ProjectPayload.of(await info.context.services.projects.create(input.name))

    update_project = renaming(
        "Project",
        lambda s: s.projects,
        inputs.UpdateProjectInput,
        ProjectPayload,
        "Rename a project.",
    )

    delete_project = deleting(
        "Project", lambda s: s.projects, "Delete a project with its videos and images."
    )

    @mutation("Create a video, with its context and a default main chat.")
    async def create_video(self, info: Info_, input: inputs.CreateVideoInput) -> VideoPayload:
        pk = decode_pk(input.project_id, "Project", "projectId")
        return VideoPayload.of(await info.context.services.videos.create(pk, input.name))

    update_video = renaming(
        "Video", lambda s: s.videos, inputs.UpdateVideoInput, VideoPayload, "Rename a video."
    )

    delete_video = deleting(
        "Video", lambda s: s.videos, "Delete a video with its frames, chats, messages and images."
    )
