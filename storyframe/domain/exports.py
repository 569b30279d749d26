"""What exporting a video needs from the database: its export rows, and its frames as an export
reads them (each with its selected image and the prompt that made it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from storyframe.db.tables import Export


class ExportFormat(StrEnum):
    MP4 = "MP4"
    PDF = "PDF"
    ZIP = "ZIP"


class ExportStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


UNFINISHED_EXPORTS = (ExportStatus.QUEUED.value, ExportStatus.RUNNING.value)


@dataclass(frozen=True, slots=True)
class FrameSource:
    """One frame of a video as an export reads it."""

    frame_id: int
    order: int
    title: str
    caption: str | None
    duration_ms: int | None
    image_id: int | None
    """The selected image; None when the frame has none."""
    storage_key: str | None = None
    url: str | None = None
    width: int = 0
    height: int = 0
    content_type: str | None = None
    prompt: str | None = None
    """The prompt of the message that made the image (None for an upload)."""
    final_prompt: str | None = None
    model: str | None = None


class ExportRows(Protocol):
    """The exports of one owner, inside the repository's transaction."""

    async def for_key(self, key: str) -> Export | None:
        """The export made with this idempotency key; the owner's requests with keys take
        turns here."""
        ...

    async def locked(self, export_id: int) -> Export | None:
        """The export, its row locked until the transaction ends (on PostgreSQL): a cancel, a
        deletion and a run's record of its end take turns on it."""
        ...

    async def queue(self, export: Export) -> None:
        """Add a QUEUED export; it is handed to the job queue as the transaction commits."""

    async def start(self, export_id: int, now: datetime) -> bool:
        """QUEUED → RUNNING, counting the attempt; False when it is not QUEUED."""
        ...

    async def unfinished(self) -> int:
        """How many of the owner's exports are queued or running."""
        ...

    async def frames(self, video_id: int) -> list[FrameSource]:
        """The video's frames in order, with their selected images."""
        ...

    async def frames_by_id(self, frame_ids: Sequence[int]) -> list[FrameSource]:
        """These frames (those that still exist), in the order given."""
        ...

    async def file_keys_of_videos(self, video_ids: Iterable[int]) -> set[str]:
        """The stored files (and subtitles) of the videos' exports."""
        ...
