"""What an export is made from: the facts of the video and of each of its frames, gathered by the
service before rendering, and the options people choose for the MP4 and the storyboard."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final


@dataclass(frozen=True, slots=True)
class SheetFrame:
    """One exported frame: its text, how long it is shown and its selected image on local disk."""

    number: int  # 1-based position among the exported frames
    title: str
    caption: str | None
    duration_ms: int  # already resolved (the frame's own or the export's default), > 0
    prompt: str | None  # the user's prompt of the message that made the image
    final_prompt: str | None  # the prompt actually sent
    model: str | None  # e.g. "gpt-image-1.5", None for uploads
    image: Path  # the selected image's original file (PNG, JPEG or WebP)
    width: int  # the image's pixel size, as stored (before any EXIF orientation)
    height: int
    content_type: str  # image/png, image/jpeg or image/webp


@dataclass(frozen=True, slots=True)
class Sheet:
    """The whole export's facts."""

    project_name: str
    video_title: str
    made_at: datetime  # aware, UTC: the date printed in the storyboard's header
    frames: Sequence[SheetFrame]


class Resolution(StrEnum):
    P720 = "P720"
    P1080 = "P1080"
    P2160 = "P2160"
    SOURCE = "SOURCE"  # the first image's aspect ratio, at most 1080 lines high


class Transition(StrEnum):
    NONE = "NONE"
    CROSSFADE = "CROSSFADE"


class Captions(StrEnum):
    NONE = "NONE"
    BURNED_IN = "BURNED_IN"
    SUBTITLES = "SUBTITLES"


class Fit(StrEnum):
    LETTERBOX = "LETTERBOX"  # the whole image, with black bars
    CROP = "CROP"  # the picture filled, the image's overflow cut evenly from both sides


class Layout(StrEnum):
    ONE = "ONE"
    GRID_2X2 = "GRID_2X2"
    GRID_3X3 = "GRID_3X3"


@dataclass(frozen=True, slots=True)
class VideoOptions:
    resolution: Resolution = Resolution.P1080
    fps: int = 24  # 1..60
    transition: Transition = Transition.NONE
    transition_ms: int = 500
    captions: Captions = Captions.NONE
    fit: Fit = Fit.LETTERBOX

    def __post_init__(self) -> None:
        if not 1 <= self.fps <= 60:
            raise ValueError("VideoOptions.fps must be between 1 and 60")
        if self.transition_ms < 0:
            raise ValueError("VideoOptions.transition_ms must not be negative")


Progress = Callable[[int, int], None]
"""Told (done, total) as rendering goes on; it may raise to stop the rendering (an export
cancelled), and the exception reaches the renderer's caller."""


class RenderFailed(Exception):
    """An export could not be rendered: an image could not be read, or the encoder refused.
    `frame` is the number of the frame at fault, when one is."""

    def __init__(self, message: str, frame: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.frame = frame


_FIXED: Final = {
    Resolution.P720: (1280, 720),
    Resolution.P1080: (1920, 1080),
    Resolution.P2160: (3840, 2160),
}
SOURCE_MAX_HEIGHT: Final = 1080
SOURCE_MAX_WIDTH: Final = 3840


def _even(value: float) -> int:
    """The even number of pixels at or just below `value` (2 at least); a hair below an even
    number, as scaling may leave it, counts as that number."""
    return max(2, 2 * math.floor(value / 2 + 1e-9))


def frame_size(resolution: Resolution, first: tuple[int, int]) -> tuple[int, int]:
    """The video's (width, height) in pixels, both even: 16:9 for the fixed resolutions; for
    SOURCE, `first` (the first image's size as shown) scaled down, never up, to at most 1080
    lines high and 3840 pixels wide, each side rounded down to an even number."""
    fixed = _FIXED.get(resolution)
    if fixed is not None:
        return fixed
    width, height = first
    if width < 1 or height < 1:
        raise ValueError(f"an image of {width}x{height} pixels has no aspect ratio")
    scale = min(1.0, SOURCE_MAX_HEIGHT / height, SOURCE_MAX_WIDTH / width)
    return _even(width * scale), _even(height * scale)
