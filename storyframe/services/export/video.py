"""The MP4 of a video: each frame's selected image shown for its duration, one after another,
encoded as H.264 (libx264, yuv420p, BT.709) with the index at the front of the file, so that a
browser starts playing it before it has all of it.

Rendering streams: it holds the pictures of the frame being shown and of the next one, whatever
the number of frames. A frame's picture is converted for the encoder once and handed to it for
every moment the frame stays still; only the pictures of a crossfade are made one by one, by
blending the two frames' converted pictures plane by plane. Captions are burned into the
picture, or written as subtitles: a WebVTT text returned to the caller and a `mov_text` track
in the MP4, which players show or hide."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final, cast

import av
from av.subtitles.stream import SubtitleStream
from av.subtitles.subtitle import SubtitleSet
from av.video.stream import VideoStream
from PIL import Image

from storyframe.services.export.render_images import (
    BLACK,
    burn_caption,
    cover_scale,
    fitted,
    load_picture,
    shown_size,
)
from storyframe.services.export.render_timeline import (
    Cue,
    Shot,
    ass_dialogue,
    cues,
    shots,
    webvtt,
)
from storyframe.services.export.sheets import (
    Captions,
    Progress,
    RenderFailed,
    Sheet,
    SheetFrame,
    VideoOptions,
    frame_size,
)

CRF: Final = 20
"""x264's constant quality: visually clean for stills and gentle fades, and stills cost little
whatever the quality, since a picture that does not change encodes to almost nothing."""
PRESET: Final = "medium"
LOOKAHEAD: Final = 10
"""Pictures x264 looks ahead to plan its bits (40 for the medium preset). Each costs about 7 MB
at 1080p: with 10 the encoder takes about 200 MB there (400 MB with 40), and stills and fades
lose next to nothing (52.3 dB PSNR against 54.7 dB with 40, 8 % fewer bytes)."""
KEYFRAME_SECONDS: Final = 5
"""The longest stretch between two keyframes, which bounds how far back a seek decodes from."""

# ITU-R BT.709 (HD) in the MPEG (limited) range, converted so and said so in the stream.
_BT709: Final = 1
_MPEG_RANGE: Final = 1
_SUBTITLE_HEADER: Final = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
    b"BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
    b"BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0"
    b"\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
    b"Text\n"
)


@dataclass(frozen=True, slots=True)
class VideoFacts:
    width: int
    height: int
    fps: int
    duration_ms: int  # the sum of the frames' durations
    frame_count: int  # pictures in the video: round(duration_ms * fps / 1000)
    subtitles: str | None  # the WebVTT text when captions are SUBTITLES, else None


CHECK_SECONDS = 2
"""How much video at most is encoded between two calls of `progress`, so that a stopped export
stops soon even in a frame of minutes."""


def render_video(
    sheet: Sheet, options: VideoOptions, target: Path, progress: Progress
) -> VideoFacts:
    """Write the MP4 of `sheet` to `target` and say what it is.

    `progress(done, total)` is told after each frame (total: the number of frames), and again,
    with the same count, every `CHECK_SECONDS` of video while a frame stays still. When it
    raises, rendering stops there and its exception reaches the caller; `target` is then left
    as it is, incomplete, for the caller to delete. Raises RenderFailed when an image cannot be
    read or the encoder fails, and ValueError for a sheet without frames. CPU-bound and
    blocking: run it in a worker thread."""
    frames = list(sheet.frames)
    if not frames:
        raise ValueError("a video needs at least one frame")
    size = frame_size(options.resolution, shown_size(frames[0]))
    timeline = shots(frames, options)
    captions = cues(frames, timeline) if options.captions is Captions.SUBTITLES else []
    facts = VideoFacts(
        width=size[0],
        height=size[1],
        fps=options.fps,
        duration_ms=timeline[-1].end_ms,
        frame_count=timeline[-1].until,
        subtitles=webvtt(captions) if options.captions is Captions.SUBTITLES else None,
    )
    with target.open("w+b") as file:
        try:
            container = av.open(file, "w", format="mp4", options={"movflags": "+faststart"})
        except av.FFmpegError as error:
            raise RenderFailed(f"the MP4 could not be started: {error}") from None
        try:
            video = _video_stream(container, size, options.fps)
            subtitles = _subtitle_stream(container) if captions else None
            _encode(
                frames, timeline, options, size, container, video, subtitles, captions, progress
            )
        except av.FFmpegError as error:
            file.close()  # the container then skips the trailer: an abandoned file stays so
            container.close()
            raise RenderFailed(f"the encoder failed: {error}") from None
        except BaseException:
            file.close()
            container.close()
            raise
        try:
            container.close()
        except av.FFmpegError as error:
            raise RenderFailed(f"the MP4 could not be finished: {error}") from None
    return facts


def _video_stream(
    container: av.container.OutputContainer, size: tuple[int, int], fps: int
) -> VideoStream:
    settings = {"crf": str(CRF), "preset": PRESET, "rc-lookahead": str(LOOKAHEAD)}
    stream = container.add_stream("libx264", rate=fps, options=settings)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, fps)
    context = stream.codec_context
    context.gop_size = KEYFRAME_SECONDS * fps
    context.colorspace = context.color_primaries = context.color_trc = _BT709
    context.color_range = _MPEG_RANGE
    # Each picture is cut in slices encoded on every core (PyAV's default), rather than several
    # pictures encoded at once: as fast here, and x264 then holds fewer pictures (about 80 MB
    # less at 1080p).
    context.thread_type = "SLICE"
    return stream


def _subtitle_stream(container: av.container.OutputContainer) -> SubtitleStream:
    stream = container.add_stream("mov_text")
    stream.codec_context.subtitle_header = _SUBTITLE_HEADER
    stream.time_base = Fraction(1, 1000)
    return stream


def _encode(
    frames: Sequence[SheetFrame],
    timeline: Sequence[Shot],
    options: VideoOptions,
    size: tuple[int, int],
    container: av.container.OutputContainer,
    video: VideoStream,
    subtitles: SubtitleStream | None,
    captions: Sequence[Cue],
    progress: Progress,
) -> None:
    by_frame = {cue.number: cue for cue in captions}
    time_base = Fraction(1, options.fps)
    done = 0
    every = CHECK_SECONDS * options.fps

    def send(picture: av.VideoFrame, index: int) -> None:
        picture.pts = index
        picture.duration = 1
        picture.time_base = time_base
        container.mux(video.encode(picture))

    current = _picture(frames[0], options, size)
    for position, (frame, shot) in enumerate(zip(frames, timeline, strict=True)):
        cue = by_frame.get(frame.number)
        if subtitles is not None and cue is not None:
            container.mux(_cue_packet(subtitles, cue))
        for index in shot.still():
            send(current, index)
            if index % every == every - 1:
                progress(done, len(frames))  # within a long frame: the caller may stop it here
        following: av.VideoFrame | None = None
        blends = shot.blends()
        if blends:
            following = _picture(frames[position + 1], options, size)
            planes_from, planes_to = _planes(current), _planes(following)
            for index, weight in blends:
                send(_blend(planes_from, planes_to, weight, size), index)
            del planes_from, planes_to
        done = position + 1
        progress(done, len(frames))
        if position + 1 < len(frames):
            current = (
                following
                if following is not None
                else _picture(frames[position + 1], options, size)
            )
    container.mux(video.encode(None))


def _picture(frame: SheetFrame, options: VideoOptions, size: tuple[int, int]) -> av.VideoFrame:
    """The frame's image fitted into the video's picture (and its caption burned in, when
    asked), converted once for the encoder."""
    width, height = shown_size(frame)
    scale = cover_scale((width, height), size, options.fit)
    image = load_picture(frame, BLACK, (round(width * scale), round(height * scale)))
    picture = fitted(image, size, options.fit)
    del image
    if options.captions is Captions.BURNED_IN and frame.caption and frame.caption.strip():
        burn_caption(picture, frame.caption.strip())
    rgb: av.VideoFrame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
    return rgb.reformat(
        format="yuv420p",
        dst_colorspace=_BT709,
        dst_color_range=_MPEG_RANGE,
        interpolation="BICUBIC",
    )


def _planes(picture: av.VideoFrame) -> list[Image.Image]:
    """The Y, U and V planes of a picture as greyscale images that share its memory (each as
    wide as the plane's stride, padding included)."""
    return [
        Image.frombuffer("L", (plane.line_size, plane.height), _bytes(plane), "raw", "L", 0, 1)
        for plane in picture.planes
    ]


def _bytes(plane: av.video.plane.VideoPlane) -> bytes:
    # A plane is a buffer (read and written in place): Pillow takes any buffer, though its
    # annotations name only bytes and arrays.
    return cast(bytes, memoryview(plane))


def _blend(
    planes_from: Sequence[Image.Image],
    planes_to: Sequence[Image.Image],
    weight: float,
    size: tuple[int, int],
) -> av.VideoFrame:
    """A new picture mixing two, `weight` of the second: the blend of the YUV planes is the
    blend of the colours, since the conversion from RGB is linear."""
    out = av.VideoFrame(size[0], size[1], "yuv420p")
    for plane, first, second in zip(out.planes, planes_from, planes_to, strict=True):
        mixed = Image.blend(first, second, weight)
        if mixed.width != plane.line_size:
            mixed = mixed.crop((0, 0, plane.line_size, plane.height))
        plane.update(mixed.tobytes())
    return _tagged(out)


def _tagged(picture: av.VideoFrame) -> av.VideoFrame:
    picture.colorspace = _BT709
    picture.color_range = _MPEG_RANGE
    return picture


def _cue_packet(stream: SubtitleStream, cue: Cue) -> av.Packet[SubtitleStream]:
    subtitle = SubtitleSet.create(
        ass_dialogue(cue.text), 0, cue.end_ms - cue.start_ms, pts=cue.start_ms
    )
    packet = stream.codec_context.encode_subtitle(subtitle)
    packet.stream = stream
    packet.time_base = stream.time_base or Fraction(1, 1000)
    return packet
