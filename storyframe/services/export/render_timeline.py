"""When each frame of an exported video is shown, counted in the video's pictures, and the
captions' cues: the arithmetic of the MP4, kept apart from the encoding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from storyframe.services.export.sheets import SheetFrame, Transition, VideoOptions


def nearest_picture(ms: Fraction | int, fps: int) -> int:
    """The index of the picture nearest to `ms` milliseconds, a half rounded up."""
    return math.floor(Fraction(ms) * fps / 1000 + Fraction(1, 2))


@dataclass(frozen=True, slots=True)
class Shot:
    """One frame's stretch of the video: its pictures are `first` up to (excluding) `until`.
    The pictures after `fade_from` (when set) blend it into the next frame."""

    start_ms: int
    end_ms: int
    first: int
    until: int
    fade_from: int | None

    def still(self) -> range:
        """The pictures that show the frame's image alone."""
        last = self.until if self.fade_from is None else self.fade_from + 1
        return range(self.first, last)

    def blends(self) -> list[tuple[int, float]]:
        """The pictures of the blend into the next frame, each with the next image's weight:
        from just above 0 to just below 1, a linear ramp over the fade."""
        if self.fade_from is None:
            return []
        span = self.until - self.fade_from
        return [
            (index, (index - self.fade_from) / span)
            for index in range(self.fade_from + 1, self.until)
        ]


def fade_ms(options: VideoOptions, before: int, after: int) -> Fraction:
    """How long the crossfade between two frames lasts: the option, at most half of the shorter
    of the two frames' durations."""
    if options.transition is not Transition.CROSSFADE:
        return Fraction(0)
    return min(Fraction(options.transition_ms), Fraction(before, 2), Fraction(after, 2))


def shots(frames: Sequence[SheetFrame], options: VideoOptions) -> list[Shot]:
    """Every frame's stretch: frame i starts at the sum of the durations before it, on the
    nearest picture; the last ends with the video, after round(total * fps / 1000) pictures."""
    out: list[Shot] = []
    start = 0
    for index, frame in enumerate(frames):
        end = start + frame.duration_ms
        first = nearest_picture(start, options.fps)
        until = nearest_picture(end, options.fps)
        if index + 1 == len(frames):
            until = max(until, 1)  # a video has a picture, however short
        fade_from: int | None = None
        if index + 1 < len(frames):
            fade = fade_ms(options, frame.duration_ms, frames[index + 1].duration_ms)
            begins = max(first, nearest_picture(end - fade, options.fps))
            if fade > 0 and until - begins >= 2:
                fade_from = begins
        out.append(Shot(start, end, first, until, fade_from))
        start = end
    return out


# --- captions as cues --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cue:
    number: int
    start_ms: int
    end_ms: int
    text: str  # lines joined by "\n", no empty line


def cues(frames: Sequence[SheetFrame], timeline: Sequence[Shot]) -> list[Cue]:
    """A cue per frame with a caption, shown for the whole of that frame."""
    out: list[Cue] = []
    for frame, shot in zip(frames, timeline, strict=True):
        lines = [line.strip() for line in (frame.caption or "").splitlines()]
        text = "\n".join(line for line in lines if line)
        if text:
            out.append(Cue(frame.number, shot.start_ms, shot.end_ms, text))
    return out


def _timestamp(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def webvtt(all_cues: Sequence[Cue]) -> str:
    """The cues as a WebVTT file, each named by its frame's number."""
    blocks = ["WEBVTT"]
    for cue in all_cues:
        text = cue.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(
            f"{cue.number}\n{_timestamp(cue.start_ms)} --> {_timestamp(cue.end_ms)}\n{text}"
        )
    return "\n\n".join(blocks) + "\n"


def ass_dialogue(text: str) -> bytes:
    """A cue's text as the dialogue of an ASS event, which FFmpeg's subtitle encoders take:
    line breaks as \\N, and a zero-width space after each backslash of the text and between a
    brace and a backslash, so that the text shows as written instead of as ASS codes."""
    escaped = text.replace("\\", "\\\u200b").replace("{\\", "{\u200b\\")
    return ("0,0,Default,,0,0,0,," + escaped.replace("\n", "\\N")).encode()
