"""render_video: the MP4 a video exports to, decoded again with PyAV and compared, picture by
picture, with what each frame's image should look like at that moment.

The images are made here with Pillow, in `tmp_path`: quadrants of four colours, so that a
picture shows where an image was placed, how large and which way up. The videos are small (720p
at 4 pictures a second) to keep the tests fast."""

from __future__ import annotations

import gc
import struct
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from storyframe.services.export import video as video_module
from storyframe.services.export.sheets import (
    Captions,
    Fit,
    RenderFailed,
    Resolution,
    Sheet,
    SheetFrame,
    Transition,
    VideoOptions,
    frame_size,
)
from storyframe.services.export.video import VideoFacts, render_video

Colour = tuple[int, int, int]
Quadrants = tuple[Colour, Colour, Colour, Colour]  # top left, top right, bottom left, bottom right

WARM: Quadrants = ((220, 40, 40), (240, 200, 30), (230, 120, 20), (250, 250, 250))
COOL: Quadrants = ((30, 60, 220), (20, 200, 200), (90, 40, 200), (30, 30, 30))
GREEN: Quadrants = ((40, 200, 60), (20, 110, 40), (160, 230, 90), (200, 255, 200))
P720 = (1280, 720)
FPS = 4


def quadrants(size: tuple[int, int], colours: Quadrants) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size, colours[0])
    image.paste(colours[1], (width // 2, 0, width, height // 2))
    image.paste(colours[2], (0, height // 2, width // 2, height))
    image.paste(colours[3], (width // 2, height // 2, width, height))
    return image


def frame(
    tmp_path: Path,
    number: int,
    image: Image.Image,
    duration_ms: int = 1000,
    caption: str | None = None,
    format: str = "PNG",
    **save: object,
) -> SheetFrame:
    path = tmp_path / f"source-{number}.{format.lower()}"
    image.save(path, format, **save)
    kind = f"image/{format.lower()}"
    return SheetFrame(
        number, f"Frame {number}", caption, duration_ms, None, None, None, path, *image.size, kind
    )


def sheet_of(frames: Sequence[SheetFrame]) -> Sheet:
    return Sheet("Project", "Video", datetime(2026, 12, 2, tzinfo=UTC), frames)


def options(**changes: Any) -> VideoOptions:  # 720p at 4 pictures a second unless changed
    return replace(VideoOptions(resolution=Resolution.P720, fps=FPS), **changes)


def render(tmp_path: Path, frames: Sequence[SheetFrame], **changes: Any) -> tuple[Path, VideoFacts]:
    target = tmp_path / f"video-{len(list(tmp_path.glob('video-*')))}.mp4"
    facts = render_video(sheet_of(frames), options(**changes), target, lambda done, total: None)
    return target, facts


def pictures(path: Path) -> list[Image.Image]:
    """Every picture of the video, in order of presentation."""
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    decoded.sort(key=lambda picture: picture.pts or 0)
    return [cast(Image.Image, picture.to_image()) for picture in decoded]  # type: ignore[no-untyped-call]


def difference(first: Image.Image, second: Image.Image) -> float:
    """The mean absolute difference of two pictures' channels, 0 to 255."""
    return sum(ImageStat.Stat(ImageChops.difference(first, second)).mean) / 3


def letterboxed(source: Image.Image, size: tuple[int, int]) -> Image.Image:
    """What a source should look like fitted into `size`, drawn independently of the renderer:
    its quadrants scaled as rectangles, on black."""
    scale = min(size[0] / source.width, size[1] / source.height)
    inner = (round(source.width * scale), round(source.height * scale))
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(
        source.resize(inner, Image.Resampling.NEAREST),
        ((size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2),
    )
    return canvas


def boxes(path: Path) -> list[str]:
    """The kinds of the MP4's top-level boxes, in file order."""
    kinds = []
    with path.open("rb") as file:
        while header := file.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                (size,) = struct.unpack(">Q", file.read(8))
                file.seek(size - 16, 1)
            else:
                file.seek(size - 8, 1)
            kinds.append(kind.decode("latin-1"))
    return kinds


# --- the file --------------------------------------------------------------------------------


def test_the_video_lasts_the_sum_of_the_durations_at_the_frame_rate_in_h264_with_the_index_first(
    tmp_path: Path,
) -> None:
    frames = [
        frame(tmp_path, 1, quadrants((640, 360), WARM), 1000),
        frame(tmp_path, 2, quadrants((300, 500), COOL), 1500),
        frame(tmp_path, 3, quadrants((333, 201), GREEN), 750),  # odd size
    ]

    target, facts = render(tmp_path, frames)

    assert facts == VideoFacts(1280, 720, FPS, 3250, 13, None)  # 3.25 s x 4 = 13 pictures
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert stream.average_rate == FPS
        assert stream.frames == 13
        assert stream.duration is not None
        assert stream.time_base is not None
        assert stream.duration * stream.time_base == Fraction(13, 4)
        assert container.duration == 3_250_000  # microseconds
        assert not container.streams.subtitles  # no captions asked for
    kinds = boxes(target)
    assert kinds.index("moov") < kinds.index("mdat")  # a browser can start before the end


def test_each_frame_shows_at_its_time_letterboxed_on_black(tmp_path: Path) -> None:
    sources = [
        quadrants((640, 960), WARM),
        quadrants((333, 201), COOL),
        quadrants((400, 400), GREEN),
    ]
    frames = [frame(tmp_path, n, sources[n - 1], ms) for n, ms in ((1, 1000), (2, 500), (3, 1250))]
    expected = [letterboxed(source, P720) for source in sources]

    target, _ = render(tmp_path, frames)

    shown = pictures(target)
    # 0-1 s: frame 1 (pictures 0-3); 1-1.5 s: frame 2 (4-5); 1.5-2.75 s: frame 3 (6-10)
    owners = [0] * 4 + [1] * 2 + [2] * 5
    assert len(shown) == len(owners)
    for index, (picture, owner) in enumerate(zip(shown, owners, strict=True)):
        assert difference(picture, expected[owner]) < 4, index
        for other in {0, 1, 2} - {owner}:
            assert difference(picture, expected[other]) > 20, (index, other)
    bars = shown[0].crop((0, 0, 400, 720)), shown[0].crop((880, 0, 1280, 720))  # 480 px wide
    assert all(max(ImageStat.Stat(bar).mean) < 3 for bar in bars)


def test_a_crop_fills_the_picture_with_the_middle_of_the_image(tmp_path: Path) -> None:
    # 1024x1536 scaled to cover 1280x720 is 1280x1920, of which rows 600-1320 are kept: the
    # quadrants meet in the middle of the picture.
    target, _ = render(tmp_path, [frame(tmp_path, 1, quadrants((1024, 1536), WARM))], fit=Fit.CROP)

    (first, *_) = pictures(target)

    assert difference(first, quadrants(P720, WARM)) < 4
    letterbox_target, _ = render(tmp_path, [frame(tmp_path, 1, quadrants((1024, 1536), WARM))])
    assert difference(pictures(letterbox_target)[0], quadrants(P720, WARM)) > 40


def test_transparency_shows_black_and_exif_orientation_is_applied(tmp_path: Path) -> None:
    half_clear = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    half_clear.paste((240, 200, 30, 255), (100, 0, 200, 100))
    turned = Image.new("RGB", (200, 100), (220, 40, 40))  # stored: red left, blue right
    turned.paste((30, 60, 220), (100, 0, 200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter clockwise: red on top, blue below
    frames = [
        frame(tmp_path, 1, turned, format="JPEG", quality=95, exif=exif.tobytes()),
        frame(tmp_path, 2, half_clear),
    ]

    target, facts = render(tmp_path, frames, resolution=Resolution.SOURCE)

    assert (facts.width, facts.height) == (100, 200)  # the first image's size as shown
    first, *_, last = pictures(target)
    assert difference(first.crop((0, 0, 100, 90)), Image.new("RGB", (100, 90), (220, 40, 40))) < 6
    assert (
        difference(first.crop((0, 110, 100, 200)), Image.new("RGB", (100, 90), (30, 60, 220))) < 6
    )
    # the 200x100 image is letterboxed into 100x200: 100x50 in the middle, left half clear
    assert max(ImageStat.Stat(last.crop((0, 80, 45, 120))).mean) < 3
    assert difference(last.crop((55, 80, 100, 120)), Image.new("RGB", (45, 40), (240, 200, 30))) < 6


def test_source_resolution_keeps_the_first_images_shape_at_most_1080_lines_in_even_pixels(
    tmp_path: Path,
) -> None:
    for shown, size in [
        ((1024, 1536), (720, 1080)),
        ((4000, 3000), (1440, 1080)),
        ((5, 3), (4, 2)),
    ]:
        assert frame_size(Resolution.SOURCE, shown) == size
        assert frame_size(Resolution.P720, shown) == (1280, 720)
        assert frame_size(Resolution.P1080, shown) == (1920, 1080)
        assert frame_size(Resolution.P2160, shown) == (3840, 2160)
    odd = [frame(tmp_path, 1, quadrants((333, 201), COOL))]

    target, facts = render(tmp_path, odd, resolution=Resolution.SOURCE)

    (first, *_) = pictures(target)
    assert first.size == (facts.width, facts.height) == (332, 200)
    assert difference(first, quadrants((332, 200), COOL)) < 6


# --- crossfades ------------------------------------------------------------------------------

RED: Colour = (220, 40, 40)
BLUE: Colour = (30, 60, 220)


def two_colours(tmp_path: Path, first_ms: int, second_ms: int) -> list[SheetFrame]:
    return [
        frame(tmp_path, 1, Image.new("RGB", (320, 180), RED), first_ms),
        frame(tmp_path, 2, Image.new("RGB", (320, 180), BLUE), second_ms),
    ]


def test_a_crossfade_blends_linearly_over_the_end_of_the_frame_without_changing_the_duration(
    tmp_path: Path,
) -> None:
    red, blue = Image.new("RGB", P720, RED), Image.new("RGB", P720, BLUE)
    frames = two_colours(tmp_path, 2000, 2000)

    target, facts = render(tmp_path, frames, transition=Transition.CROSSFADE, transition_ms=1000)

    shown = pictures(target)
    assert facts.frame_count == len(shown) == 16  # still 4 s
    # the fade takes the last second of frame 1 (pictures 4 to 8): 6 is its middle
    for index in (0, 4, 8, 15):
        assert difference(shown[index], red if index < 8 else blue) < 3, index
    middle = Image.blend(red, blue, 0.5)
    assert difference(shown[6], middle) < 3
    assert difference(shown[6], red) > 40
    assert difference(shown[6], blue) > 40
    assert difference(shown[5], Image.blend(red, blue, 0.25)) < 3
    assert difference(shown[7], Image.blend(red, blue, 0.75)) < 3


def test_a_crossfade_takes_at_most_half_of_the_shorter_frame(tmp_path: Path) -> None:
    red, blue = Image.new("RGB", P720, RED), Image.new("RGB", P720, BLUE)

    faded, _ = render(
        tmp_path,
        two_colours(tmp_path, 2000, 1000),
        transition=Transition.CROSSFADE,
        transition_ms=5000,
    )
    plain, _ = render(tmp_path, two_colours(tmp_path, 2000, 1000))

    shown = pictures(faded)
    assert len(shown) == 12
    # half of 1 s: the fade runs from 1.5 s (picture 6) to 2 s (picture 8)
    assert difference(shown[6], red) < 3
    assert difference(shown[7], Image.blend(red, blue, 0.5)) < 3
    assert difference(shown[8], blue) < 3
    assert difference(pictures(plain)[7], red) < 3  # and without a transition, no blend


# --- captions --------------------------------------------------------------------------------


def test_a_burned_in_caption_darkens_the_bottom_band_and_writes_on_it_leaving_the_rest(
    tmp_path: Path,
) -> None:
    caption = "A lighthouse at dawn — é 日本 🙂"
    frames = [
        frame(tmp_path, 1, quadrants(P720, GREEN), caption=caption),
        frame(tmp_path, 2, quadrants(P720, WARM)),
    ]

    plain, _ = render(tmp_path, frames)
    burned, facts = render(tmp_path, frames, captions=Captions.BURNED_IN)

    assert facts.subtitles is None
    (captioned, uncaptioned) = pictures(burned)[0], pictures(burned)[-1]
    (before, after) = pictures(plain)[0], pictures(plain)[-1]
    above = (0, 0, 1280, 480)
    band = (0, 612, 1280, 684)  # one line: 72 px above a margin of 5 % of the height
    assert difference(captioned.crop(above), before.crop(above)) < 1.5
    assert difference(captioned.crop(band), before.crop(band)) > 40
    margin = (0, 620, 50, 680)  # in the band, left of the text
    shaded = ImageStat.Stat(captioned.crop(margin).convert("L")).mean[0]
    unshaded = ImageStat.Stat(before.crop(margin).convert("L")).mean[0]
    assert 0.3 * unshaded < shaded < 0.5 * unshaded  # darker, not black: translucent
    assert ImageStat.Stat(captioned.crop(band).convert("L")).extrema[0][1] > 230  # white letters
    assert difference(uncaptioned, after) < 1.5  # a frame without a caption is untouched


def test_subtitles_are_cues_in_webvtt_and_in_a_mov_text_track_leaving_the_picture(
    tmp_path: Path,
) -> None:
    captions = ["Dawn <at> the pier & sea\n\nsecond line", None, "Écume {\\i1} — 日本 \\N"]
    frames = [
        frame(tmp_path, n, quadrants((640, 360), colours), ms, caption)
        for n, colours, ms, caption in zip(
            (1, 2, 3), (WARM, COOL, GREEN), (1500, 1000, 1250), captions, strict=True
        )
    ]

    plain, _ = render(tmp_path, frames)
    target, facts = render(tmp_path, frames, captions=Captions.SUBTITLES)

    assert facts.subtitles == (
        "WEBVTT\n\n"
        "1\n00:00:00.000 --> 00:00:01.500\nDawn &lt;at&gt; the pier &amp; sea\nsecond line\n\n"
        "3\n00:00:02.500 --> 00:00:03.750\nÉcume {\\i1} — 日本 \\N\n"
    )
    with av.open(str(target)) as container:
        (track,) = container.streams.subtitles
        assert track.codec_context.name == "mov_text"
        samples = [
            (packet.pts, packet.duration, bytes(packet)[2:].decode())
            for packet in container.demux(track)
            if packet.size > 2  # the muxer fills the gaps with empty samples
        ]
    zero_width = "\u200b"
    assert samples == [
        (0, 1500, "Dawn <at> the pier & sea\nsecond line"),
        (2500, 1250, f"Écume {{{zero_width}\\{zero_width}i1}} — 日本 \\{zero_width}N"),
    ]
    assert [
        difference(a, b) for a, b in zip(pictures(target), pictures(plain), strict=True)
    ] == pytest.approx([0] * 15, abs=0.5)


# --- progress, streaming and failures ---------------------------------------------------------


def test_progress_is_told_after_each_frame_and_a_raise_from_it_stops_the_rendering(
    tmp_path: Path,
) -> None:
    frames = [frame(tmp_path, n, quadrants((64, 36), WARM), 500) for n in (1, 2, 3)]
    told: list[tuple[int, int]] = []

    render_video(
        sheet_of(frames), options(), tmp_path / "whole.mp4", lambda *step: told.append(step)
    )
    assert told == [(1, 3), (2, 3), (3, 3)]

    def cancel_at_two(done: int, total: int) -> None:
        told.append((done, total))
        if done == 2:
            raise InterruptedError("the export was cancelled")

    told.clear()
    with pytest.raises(InterruptedError, match="cancelled"):
        render_video(sheet_of(frames), options(), tmp_path / "cancelled.mp4", cancel_at_two)
    assert told == [(1, 3), (2, 3)]
    assert (tmp_path / "cancelled.mp4").exists()  # left for the caller to delete


def test_a_long_frame_can_be_stopped_before_its_end(tmp_path: Path) -> None:
    long = frame(tmp_path, 1, quadrants((64, 36), WARM), 600_000)  # ten minutes
    told: list[tuple[int, int]] = []

    def stop_at_once(done: int, total: int) -> None:
        told.append((done, total))
        raise InterruptedError("the export was cancelled")

    with pytest.raises(InterruptedError):
        render_video(sheet_of([long]), options(), tmp_path / "long.mp4", stop_at_once)
    assert told == [(0, 1)]  # told within the frame, long before its 2400 pictures were made


def test_each_image_is_converted_once_and_at_most_two_are_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = [frame(tmp_path, n, quadrants((64, 36), WARM), 1500) for n in range(1, 7)]
    converted: list[int] = []
    held: list[int] = []
    real = video_module._picture

    def counting(source: SheetFrame, *args: object) -> av.VideoFrame:
        converted.append(source.number)
        return real(source, *args)  # type: ignore[arg-type]

    def count_pictures(done: int, total: int) -> None:
        gc.collect()
        held.append(sum(isinstance(thing, av.VideoFrame) for thing in gc.get_objects()))

    monkeypatch.setattr(video_module, "_picture", counting)
    render_video(
        sheet_of(frames),
        options(transition=Transition.CROSSFADE),
        tmp_path / "streamed.mp4",
        count_pictures,
    )

    assert converted == [1, 2, 3, 4, 5, 6]  # 36 pictures from 6 conversions
    assert 1 <= min(held) <= max(held) <= 2


def test_an_unreadable_image_fails_naming_its_frame(tmp_path: Path) -> None:
    good = frame(tmp_path, 1, quadrants((64, 36), WARM))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")

    with pytest.raises(RenderFailed) as failure:
        render(tmp_path, [good, replace(good, number=2, image=broken)])

    assert failure.value.frame == 2


def test_a_video_needs_a_frame(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        render(tmp_path, [])
