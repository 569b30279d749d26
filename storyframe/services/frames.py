"""Frames: the ordered stills of a video. Orders stay 0..n-1, contiguous, under concurrency."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from storyframe.db.tables import CAPTION_MAX, TITLE_MAX, Frame, Video, utcnow
from storyframe.domain.errors import DomainError, ErrorCode, LimitReached, NotFound
from storyframe.domain.places import Place, PlaceKind
from storyframe.domain.ports import Doomed, FileReleaser, Repository, UnitOfWork
from storyframe.services.deletion import Deleted, doom_chat_history, doom_files
from storyframe.services.limits import ListLimits
from storyframe.services.rows import found
from storyframe.services.validation import clean_name

MIN_DURATION_MS = 100
MAX_DURATION_MS = 600_000


class _Keep(Enum):
    KEEP = "KEEP"


KEEP = _Keep.KEEP
"""A change not asked for: the value stays as it is."""


@dataclass(frozen=True, slots=True)
class FrameChanges:
    title: str | None = None
    """None leaves the title as it is."""
    duration_ms: int | _Keep | None = KEEP
    """None clears it (the export's default applies)."""
    caption: str | _Keep | None = KEEP
    """None (or blank) removes it."""


def _clamp(value: int, upper: int) -> int:
    return max(0, min(value, upper))


async def _frame(repo: Repository, frame_id: int, field: str = "id") -> Frame:
    return await found(repo, Frame, frame_id, "frame", field)


class FrameService:
    def __init__(self, uow: UnitOfWork, files: FileReleaser, limits: ListLimits) -> None:
        self._uow = uow
        self._files = files
        self._limits = limits

    async def create(self, video_id: int, title: str, order: int | None = None) -> Frame:
        """A new frame at `order` (clamped to 0..n; appended when None), unless the video has
        as many frames as it may."""
        cleaned = clean_name(title, "title", TITLE_MAX, allow_blank=True)
        async with self._uow() as repo:
            # Lock first: a video deleted while we waited for its lock is then seen as gone,
            # and frames another request added meanwhile are counted.
            await repo.lock_video(video_id)
            await found(repo, Video, video_id, "video", "videoId")
            frames = await repo.frames_of_video(video_id)
            most = self._limits.frames_per_video
            if len(frames) >= most:
                raise LimitReached(f"a video has at most {most} frames", ["videoId"])
            frame = Frame(video_id=video_id, title=cleaned, order=len(frames))
            await repo.add(frame)
            if order is not None and order < len(frames):
                frames.insert(_clamp(order, len(frames)), frame)
                await repo.set_frame_orders(video_id, frames)
            await repo.commit()
        return frame

    async def rename(self, frame_id: int, title: str) -> Frame:
        return await self.update(frame_id, FrameChanges(title=title))

    async def update(self, frame_id: int, changes: FrameChanges) -> Frame:
        """Change what `changes` names (its title, duration, caption); every value is checked
        before anything is written."""
        title = (
            clean_name(changes.title, "title", TITLE_MAX, allow_blank=True)
            if changes.title is not None
            else None
        )
        duration = changes.duration_ms
        if isinstance(duration, int) and not MIN_DURATION_MS <= duration <= MAX_DURATION_MS:
            raise DomainError(
                ErrorCode.INVALID,
                f"durationMs must be {MIN_DURATION_MS} to {MAX_DURATION_MS}",
                ["durationMs"],
            )
        caption = changes.caption
        if isinstance(caption, str):
            caption = clean_name(caption, "caption", CAPTION_MAX, allow_blank=True) or None
        async with self._uow() as repo:
            frame = await _frame(repo, frame_id)
            if title is not None:
                frame.title = title
            if changes.duration_ms is not KEEP:
                frame.duration_ms = duration if isinstance(duration, int) else None
            if changes.caption is not KEEP:
                frame.caption = caption if isinstance(caption, str) else None
            frame.updated_at = utcnow()
            await repo.save(frame)
            await repo.commit()
        return frame

    async def reorder(self, frame_id: int, new_order: int) -> Frame:
        """Move the frame to `new_order` (clamped); its neighbours shift to close the gap."""
        async with self._uow() as repo:
            video_id = (await _frame(repo, frame_id)).video_id
            await repo.lock_video(video_id)
            frames = await repo.frames_of_video(video_id)
            # The frame may have been deleted while this waited for the video's lock.
            frame = next((f for f in frames if f.id == frame_id), None)
            if frame is None:
                raise NotFound("frame", ["id"])
            frames.remove(frame)
            frames.insert(_clamp(new_order, len(frames)), frame)
            await repo.set_frame_orders(video_id, frames)
            await repo.commit()
        return frame

    async def select_image(self, frame_id: int, image_id: int | None) -> Frame:
        """Select one of the frame's images, or clear the selection with None."""
        async with self._uow() as repo:
            frame = await _frame(repo, frame_id, "frameId")
            if image_id is not None:
                # held, so that a deletion of the image waits for the selection, or goes first
                if not await repo.lock_images([image_id], exclusive=False):
                    raise NotFound("image", ["imageId"])
                if not await repo.has_placement(image_id, Place(PlaceKind.FRAME, frame_id)):
                    raise DomainError(
                        ErrorCode.NOT_IN_PLACE, "the image is not in this frame", ["imageId"]
                    )
            frame.selected_image_id, frame.updated_at = image_id, utcnow()
            await repo.save(frame)
            await repo.commit()
        return frame

    async def delete(self, frame_id: int) -> Deleted:
        async with self._uow() as repo:
            video_id = (await _frame(repo, frame_id)).video_id
            await repo.lock_video(video_id)
            if all(f.id != frame_id for f in await repo.frames_of_video(video_id)):
                raise NotFound("frame", ["id"])  # deleted while this waited for the lock
            doomed = Doomed(frames={frame_id})
            await doom_chat_history(repo, doomed, Place(PlaceKind.FRAME, frame_id))
            await doom_files(repo, doomed)
            await repo.delete(doomed)
            await repo.set_frame_orders(video_id, await repo.frames_of_video(video_id))
            await repo.commit()
        await self._files.release(doomed.storage_keys)
        return Deleted.of(doomed)
