"""`uploadImages`: multipart uploads (the GraphQL multipart request spec) into a place."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import strawberry

from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.resolvers.mutation import mutation
from storyframe.resolvers.places import place_of
from storyframe.schema.images import Image
from storyframe.schema.inputs import UploadImagesInput
from storyframe.schema.payloads import UploadImagesPayload
from storyframe.schema.request_context import Info_
from storyframe.services.uploads import IncomingFile

CHUNK = 1 << 20


def _check_files(uploads: list[Any]) -> None:
    """Refuse what is not a file where a file goes: `Upload` takes any value the variables
    carry as JSON (a string, a number, an object) in place of a file part."""
    for index, upload in enumerate(uploads):
        if not all(callable(getattr(upload, method, None)) for method in ("read", "seek")):
            raise DomainError(
                ErrorCode.INVALID,
                f"item {index + 1} of `files` is not a file: send each file as a part of a "
                "multipart request (the GraphQL multipart request spec)",
                ["files", str(index)],
            )


async def _spill(upload: Any, folder: Path, index: int) -> IncomingFile:
    """Copy an uploaded part to a file of our own, a chunk at a time (never whole in memory)."""
    path = folder / f"upload-{index}"
    await upload.seek(0)
    with path.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            await asyncio.to_thread(out.write, chunk)
    return IncomingFile(filename=str(getattr(upload, "filename", "") or ""), path=path)


@strawberry.type
class UploadMutation:
    @mutation(
        "Upload images into a frame, a context, a main chat or a project's gallery. Send it as a "
        "multipart request with an `Apollo-Require-Preflight: true` header."
    )
    async def upload_images(self, info: Info_, input: UploadImagesInput) -> UploadImagesPayload:
        services = info.context.services
        try:
            _check_files(input.files)
            target = place_of(input.target_id, "targetId")
            with services.uploads.workspace() as folder:
                incoming = [
                    await _spill(upload, Path(folder), index)
                    for index, upload in enumerate(input.files)
                ]
                rows = await services.uploads.upload(target, incoming)
            return UploadImagesPayload(images=[Image.from_row(row) for row in rows])
        finally:
            # The parsed form's spooled files are ours to close, or they leak until collected.
            for upload in input.files:
                close = getattr(upload, "close", None)
                if close is not None:
                    await close()
