"""An export's images: each selected image read through blob storage to a work file, one at a
time (memory holds one image, whatever the number of frames), with what the renderers know of
its frame."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.exports import FrameSource
from storyframe.domain.ports import IMAGE_EXTENSIONS, BlobStorage
from storyframe.services.export.requests import ExportOptions
from storyframe.services.export.sheets import RenderFailed, SheetFrame


async def fetch_frames(
    storage: BlobStorage,
    sources: Sequence[FrameSource],
    options: ExportOptions,
    folder: Path,
    fetched: Callable[[], None],
) -> list[SheetFrame]:
    """The frames that still have a selected image, numbered from 1, their images in `folder`;
    `fetched` is told after each. RenderFailed names the frame whose image cannot be read."""
    default_ms = round(options.seconds_per_frame * 1000)
    frames: list[SheetFrame] = []
    for source in sources:
        if source.image_id is None or source.storage_key is None:
            continue  # its selection was cleared after the export was asked for
        number = len(frames) + 1
        try:
            data = await storage.read(source.storage_key, url=source.url)
        except Exception as error:
            raise RenderFailed(
                f"the image of frame {number} could not be read ({type(error).__name__})",
                number,
            ) from error
        content_type = source.content_type or "image/png"
        path = folder / f"{number:05d}.{IMAGE_EXTENSIONS.get(content_type, 'img')}"
        await asyncio.to_thread(path.write_bytes, data)
        frames.append(
            SheetFrame(
                number=number,
                title=source.title,
                caption=source.caption,
                duration_ms=source.duration_ms or default_ms,
                prompt=source.prompt,
                final_prompt=source.final_prompt,
                model=source.model,
                image=path,
                width=source.width,
                height=source.height,
                content_type=content_type,
            )
        )
        fetched()
    if not frames:
        raise DomainError(
            ErrorCode.MISSING_SELECTION, "none of the frames has a selected image any more"
        )
    return frames
