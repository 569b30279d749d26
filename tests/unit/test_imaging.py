"""inspect_image: what it accepts, what it refuses and why, and the thumbnail it makes.

Every image is made here with Pillow, in `tmp_path`.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile, JpegImagePlugin

from storyframe.domain.errors import ErrorCode
from storyframe.services.image_files import (
    ImageLimits,
    ImageRefused,
    Inspected,
    inspect_image,
    inspect_image_async,
)
from storyframe.services.resized import PREVIEW_SIDE, fit_for_model, make_preview

Colour = tuple[int, int, int]

RED: Colour = (255, 0, 0)
BLUE: Colour = (0, 0, 255)

# --- making images ------------------------------------------------------------------------------


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    """Random pixels: they compress badly, so a file of them has plenty of data to cut."""
    width, height = size
    bands = Image.getmodebands(mode)
    return Image.frombytes(mode, size, random.Random(seed).randbytes(width * height * bands))


def two_halves(size: tuple[int, int], left: Colour, right: Colour) -> Image.Image:
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def saved(path: Path, image: Image.Image, format: str, **params: Any) -> Path:
    image.save(path, format, **params)
    return path


def encoded(image: Image.Image, format: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **params)
    return buffer.getvalue()


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def png_declaring(width: int, height: int) -> bytes:
    """A 4x4 PNG whose IHDR claims another size, its CRC recomputed so the header is valid."""
    data = bytearray(encoded(noise((4, 4)), "PNG"))
    assert data[12:16] == b"IHDR"
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(data[12:29]))
    return bytes(data)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A 4x4 baseline JPEG whose start-of-frame claims another size."""
    data = bytearray(encoded(noise((4, 4)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    """A 4x4 lossy WebP whose VP8 frame header claims another size (at most 16383 a side)."""
    data = bytearray(encoded(noise((4, 4)), "WEBP"))
    assert data[12:16] == b"VP8 "
    struct.pack_into("<HH", data, 26, width, height)
    return bytes(data)


def thumbnail_of(inspected: Inspected) -> Image.Image:
    image = Image.open(io.BytesIO(inspected.thumbnail), formats=["WEBP"])
    image.load()
    return image


def rgba_at(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    pixel = image.convert("RGBA").getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel


def near(pixel: tuple[int, ...], colour: tuple[int, ...], tolerance: int = 8) -> bool:
    """Close enough, allowing for lossy WebP."""
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


def refusal(path: Path, limits: ImageLimits | None = None) -> ImageRefused:
    with pytest.raises(ImageRefused) as caught:
        inspect_image(path, limits or ImageLimits())
    return caught.value


# --- accepted images ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format", "content_type", "extension"),
    [("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg"), ("WEBP", "image/webp", "webp")],
)
def test_an_image_is_described_with_a_webp_thumbnail(
    tmp_path: Path, format: str, content_type: str, extension: str
) -> None:
    # given
    path = saved(tmp_path / "upload", noise((1200, 900)), format)

    # when
    inspected = inspect_image(path, ImageLimits())

    # then
    assert inspected.content_type == content_type
    assert inspected.extension == extension
    assert (inspected.width, inspected.height) == (1200, 900)
    assert inspected.byte_size == path.stat().st_size
    assert inspected.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    thumbnail = thumbnail_of(inspected)
    assert thumbnail.format == "WEBP"
    assert thumbnail.size == (512, 384)


def test_the_type_comes_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    # given
    path = saved(tmp_path / "photo.jpg", noise((40, 30)), "PNG")

    # when
    inspected = inspect_image(path, ImageLimits())

    # then
    assert (inspected.content_type, inspected.extension) == ("image/png", "png")


def test_a_small_image_is_not_upscaled(tmp_path: Path) -> None:
    # given
    path = saved(tmp_path / "small.png", noise((100, 60)), "PNG")

    # when
    inspected = inspect_image(path, ImageLimits())

    # then
    assert thumbnail_of(inspected).size == (100, 60)


@pytest.mark.parametrize(
    ("size", "thumbnail_size", "expected"),
    [((2000, 500), 512, (512, 128)), ((300, 600), 64, (32, 64)), ((1000, 1000), 100, (100, 100))],
)
def test_the_thumbnail_keeps_the_aspect_ratio_within_the_limit(
    tmp_path: Path, size: tuple[int, int], thumbnail_size: int, expected: tuple[int, int]
) -> None:
    # given
    path = saved(tmp_path / "image.png", noise(size), "PNG")

    # when
    inspected = inspect_image(path, ImageLimits(thumbnail_size=thumbnail_size))

    # then
    assert thumbnail_of(inspected).size == expected


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    path = saved(tmp_path / "big.jpg", noise((2048, 1536)), "JPEG")
    decoded_sizes: list[tuple[int, int]] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spying_draft(
        image: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> tuple[str, tuple[int, int, float, float]] | None:
        result = draft(image, mode, size)
        decoded_sizes.append(image.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spying_draft)

    # when
    inspected = inspect_image(path, ImageLimits(thumbnail_size=256))

    # then
    assert decoded_sizes[0] == (512, 384)  # a quarter: 1/8 would be under 256 high
    assert (inspected.width, inspected.height) == (2048, 1536)
    assert thumbnail_of(inspected).size == (256, 192)


def test_an_exif_rotated_jpeg_gets_an_upright_thumbnail(tmp_path: Path) -> None:
    # given: stored landscape, red on the left; EXIF says "turn 90° clockwise to view"
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    path = saved(tmp_path / "phone.jpg", two_halves((200, 100), RED, BLUE), "JPEG", exif=exif)

    # when
    inspected = inspect_image(path, ImageLimits())

    # then: the stored size is reported, the thumbnail is portrait with red at the top
    assert (inspected.width, inspected.height) == (200, 100)
    thumbnail = thumbnail_of(inspected)
    assert thumbnail.size == (100, 200)
    assert near(rgba_at(thumbnail, (50, 20)), RED, tolerance=40)
    assert near(rgba_at(thumbnail, (50, 180)), BLUE, tolerance=40)


def test_a_jpeg_with_unreadable_exif_is_accepted_unturned(tmp_path: Path) -> None:
    # given: the EXIF's first directory points far past its end
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = bytearray(encoded(Image.new("RGB", (60, 30), RED), "JPEG", exif=exif))
    tiff = data.index(b"Exif\x00\x00") + 6
    data[tiff : tiff + 8] = b"MM\x00\x2a\xff\xff\xff\xff"
    path = written(tmp_path / "odd.jpg", bytes(data))

    # when
    with pytest.warns(UserWarning, match="Corrupt EXIF data"):
        inspected = inspect_image(path, ImageLimits())

    # then: Pillow warns, and reads no orientation
    assert thumbnail_of(inspected).size == (60, 30)


@pytest.mark.parametrize(("format", "params"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_an_animated_image_is_thumbnailed_from_its_first_frame(
    tmp_path: Path, format: str, params: dict[str, Any]
) -> None:
    # given
    frames = [Image.new("RGB", (80, 40), RED), Image.new("RGB", (80, 40), BLUE)]
    path = saved(
        tmp_path / "animated",
        frames[0],
        format,
        save_all=True,
        append_images=frames[1:],
        duration=100,
        **params,
    )

    # when
    inspected = inspect_image(path, ImageLimits())

    # then
    assert (inspected.width, inspected.height) == (80, 40)
    assert near(rgba_at(thumbnail_of(inspected), (40, 20)), RED)


@pytest.mark.parametrize(
    ("image", "format", "mode"),
    [
        (Image.new("RGBA", (40, 40), (255, 0, 0, 128)), "PNG", "RGBA"),
        (Image.new("LA", (40, 40), (200, 0)), "PNG", "RGBA"),
        (Image.new("P", (40, 40), 0), "PNG", "RGB"),
        (Image.new("L", (40, 40), 128), "PNG", "RGB"),
        (Image.new("1", (40, 40), 1), "PNG", "RGB"),
        (Image.new("RGB", (40, 40), RED), "JPEG", "RGB"),
        (Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG", "RGB"),
        (Image.new("RGBA", (40, 40), (255, 0, 0, 128)), "WEBP", "RGBA"),
    ],
)
def test_the_thumbnail_is_rgb_or_rgba_as_the_image_needs(
    tmp_path: Path, image: Image.Image, format: str, mode: str
) -> None:
    # given
    path = saved(tmp_path / "image", image, format)

    # when
    inspected = inspect_image(path, ImageLimits())

    # then
    assert thumbnail_of(inspected).mode == mode


def test_a_palette_png_with_a_transparent_colour_keeps_its_transparency(tmp_path: Path) -> None:
    # given
    image = Image.new("P", (40, 40), 0)
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.paste(1, (20, 0, 40, 40))
    path = saved(tmp_path / "sprite.png", image, "PNG", transparency=1)

    # when
    thumbnail = thumbnail_of(inspect_image(path, ImageLimits()))

    # then
    assert thumbnail.mode == "RGBA"
    assert near(rgba_at(thumbnail, (5, 20)), (*RED, 255))
    assert rgba_at(thumbnail, (35, 20))[3] == 0


def test_an_rgb_colour_profile_is_kept_in_the_thumbnail(tmp_path: Path) -> None:
    # given
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = saved(tmp_path / "photo.jpg", noise((64, 64)), "JPEG", icc_profile=profile)

    # when
    thumbnail = thumbnail_of(inspect_image(path, ImageLimits()))

    # then
    assert thumbnail.info.get("icc_profile") == profile


def test_a_16_bit_greyscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    # given: a mid grey in 16 bits
    path = saved(tmp_path / "scan.png", Image.new("I;16", (40, 40), 32896), "PNG")

    # when
    thumbnail = thumbnail_of(inspect_image(path, ImageLimits()))

    # then
    assert near(rgba_at(thumbnail, (20, 20)), (128, 128, 128, 255), tolerance=2)


async def test_inspect_image_async_runs_the_same_checks(tmp_path: Path) -> None:
    # given
    path = saved(tmp_path / "image.webp", noise((30, 20)), "WEBP")

    # when
    inspected = await inspect_image_async(path, ImageLimits())

    # then
    assert (inspected.content_type, inspected.width, inspected.height) == ("image/webp", 30, 20)


# --- refused: file size -------------------------------------------------------------------------


def test_a_file_over_the_byte_limit_is_too_large(tmp_path: Path) -> None:
    # given
    path = saved(tmp_path / "image.png", noise((50, 50)), "PNG")
    size = path.stat().st_size

    # when
    refused = refusal(path, ImageLimits(max_bytes=size - 1))

    # then
    assert refused.code is ErrorCode.TOO_LARGE
    assert refused.reason == f"the file is {size:,} bytes, over the limit of {size - 1:,} bytes"


def test_a_file_of_exactly_the_byte_limit_is_accepted(tmp_path: Path) -> None:
    # given
    path = saved(tmp_path / "image.png", noise((50, 50)), "PNG")

    # when
    inspected = inspect_image(path, ImageLimits(max_bytes=path.stat().st_size))

    # then
    assert inspected.byte_size == path.stat().st_size


def test_the_byte_limit_is_checked_before_the_type(tmp_path: Path) -> None:
    # given
    path = written(tmp_path / "notes.png", b"not an image at all")

    # when
    refused = refusal(path, ImageLimits(max_bytes=10))

    # then
    assert refused.code is ErrorCode.TOO_LARGE


# --- refused: type ------------------------------------------------------------------------------


TEXT_AS_PNG = b"Hello, this is text pretending to be a PNG.\n"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        pytest.param(
            "picture.png",
            TEXT_AS_PNG,
            "the file is not an image: upload a PNG, JPEG or WebP image",
            id="text-named-png",
        ),
        pytest.param(
            "empty.jpg", b"", "the file is empty: upload a PNG, JPEG or WebP image", id="empty"
        ),
    ],
)
def test_a_file_that_is_no_image_is_unsupported(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    # given
    path = written(tmp_path / name, data)

    # when
    refused = refusal(path)

    # then
    assert refused.code is ErrorCode.UNSUPPORTED_TYPE
    assert refused.reason == reason


def test_a_refusal_reads_as_its_reason(tmp_path: Path) -> None:
    # when
    refused = refusal(written(tmp_path / "picture.png", TEXT_AS_PNG))

    # then
    assert str(refused) == refused.reason


def test_a_gif_is_unsupported(tmp_path: Path) -> None:
    # given
    path = saved(tmp_path / "image.gif", Image.new("P", (8, 8), 0), "GIF")

    # when
    refused = refusal(path)

    # then
    assert refused.code is ErrorCode.UNSUPPORTED_TYPE


def test_a_riff_that_is_not_webp_is_unsupported(tmp_path: Path) -> None:
    # given
    path = written(tmp_path / "sound.webp", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28))

    # when
    refused = refusal(path)

    # then
    assert refused.code is ErrorCode.UNSUPPORTED_TYPE


# --- refused: pixel count -----------------------------------------------------------------------


@pytest.mark.parametrize("declaring", [png_declaring, jpeg_declaring, webp_declaring])
def test_a_header_declaring_too_many_pixels_is_refused_before_decoding(
    tmp_path: Path, declaring: Callable[[int, int], bytes]
) -> None:
    # given: the data holds 4x4 pixels, so decoding it would fail as corrupt instead
    path = written(tmp_path / "bomb", declaring(16000, 16000))

    # when
    refused = refusal(path)

    # then
    assert refused.code is ErrorCode.TOO_LARGE
    assert refused.reason == (
        "the image is 16,000 x 16,000 pixels (256,000,000), over the limit of 50,000,000 pixels"
    )


def test_a_png_declaring_20000_by_20000_pixels_is_too_large(tmp_path: Path) -> None:
    # given
    path = written(tmp_path / "bomb.png", png_declaring(20_000, 20_000))

    # when
    refused = refusal(path)

    # then
    assert refused.code is ErrorCode.TOO_LARGE


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_pillows_own_decompression_bomb_limit_is_refused_without_a_warning(
    tmp_path: Path, side: int
) -> None:
    # given: our limit is raised past Pillow's; 10000² only makes Pillow warn, 20000² raise
    path = written(tmp_path / "bomb.png", png_declaring(side, side))
    limits = ImageLimits(max_pixels=10**9)
    assert Image.MAX_IMAGE_PIXELS is not None
    assert side * side > Image.MAX_IMAGE_PIXELS

    # when
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refused = refusal(path, limits)

    # then
    assert refused.code is ErrorCode.TOO_LARGE
    assert f"over the limit of {Image.MAX_IMAGE_PIXELS:,} pixels" in refused.reason
    assert caught == []


def test_an_image_of_exactly_the_pixel_limit_is_accepted(tmp_path: Path) -> None:
    # given
    path = saved(tmp_path / "image.png", noise((100, 50)), "PNG")

    # when
    inspected = inspect_image(path, ImageLimits(max_pixels=5000))

    # then
    assert (inspected.width, inspected.height) == (100, 50)
    assert refusal(path, ImageLimits(max_pixels=4999)).code is ErrorCode.TOO_LARGE


# --- refused: damaged data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format", "size"),
    [("PNG", (300, 200)), ("JPEG", (1600, 1200)), ("WEBP", (300, 200))],
)
def test_an_image_cut_in_half_is_corrupt(
    tmp_path: Path, format: str, size: tuple[int, int]
) -> None:
    # given: the JPEG is large enough to be decoded at 1/8 scale
    data = encoded(noise(size), format)
    path = written(tmp_path / "cut", data[: len(data) // 2])

    # when
    refused = refusal(path, ImageLimits(thumbnail_size=128))

    # then
    assert refused.code is ErrorCode.CORRUPT_IMAGE
    assert refused.reason.endswith("image is damaged or incomplete and can't be read")


def test_a_jpeg_missing_only_its_last_bytes_is_corrupt_even_when_scaled(tmp_path: Path) -> None:
    # given: scaled decoding still reads the whole stream
    data = encoded(noise((1600, 1200)), "JPEG")
    path = written(tmp_path / "cut.jpg", data[:-64])

    # when
    refused = refusal(path, ImageLimits(thumbnail_size=128))

    # then
    assert refused.code is ErrorCode.CORRUPT_IMAGE
    assert refused.reason == "the JPEG image is damaged or incomplete and can't be read"


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n" + bytes(40),
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        b"\xff\xd8\xff\xd9",
        b"RIFF\x10\x00\x00\x00WEBPVP8 \x04\x00\x00\x00",
    ],
)
def test_a_signature_without_a_readable_header_is_corrupt(tmp_path: Path, data: bytes) -> None:
    # given
    path = written(tmp_path / "stub", data)

    # when
    refused = refusal(path)

    # then
    assert refused.code is ErrorCode.CORRUPT_IMAGE


def test_pillows_global_settings_are_left_alone(tmp_path: Path) -> None:
    # given
    before = Image.MAX_IMAGE_PIXELS
    data = encoded(noise((300, 200)), "PNG")
    path = written(tmp_path / "cut.png", data[: len(data) // 2])

    # when
    refusal(path)
    refusal(written(tmp_path / "bomb.png", png_declaring(20_000, 20_000)))

    # then
    assert before == Image.MAX_IMAGE_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["max_bytes", "max_pixels", "thumbnail_size"])
def test_limits_must_be_positive(field: str) -> None:
    # given
    values = {field: 0}

    # when / then
    with pytest.raises(ValueError, match=f"ImageLimits.{field} must be positive"):
        ImageLimits(**values)


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_an_image_small_enough_goes_to_a_model_as_it_is() -> None:
    data = _encoded(Image.new("RGB", (800, 600), (10, 20, 30)), "PNG")
    assert fit_for_model(data, "image/png") == (data, "image/png")


@pytest.mark.parametrize(
    ("mode", "fmt", "content_type"),
    [("RGB", "JPEG", "image/jpeg"), ("RGB", "PNG", "image/jpeg"), ("RGBA", "PNG", "image/png")],
)
def test_a_large_image_is_scaled_down_for_a_model(mode: str, fmt: str, content_type: str) -> None:
    data = _encoded(Image.new(mode, (4096, 1024), (200, 10, 10, 128)[: len(mode)]), fmt)
    fitted, fitted_type = fit_for_model(data, f"image/{fmt.lower()}")
    assert fitted_type == content_type
    with Image.open(io.BytesIO(fitted)) as image:
        assert image.size == (2048, 512)


def test_bytes_that_are_no_image_are_refused_for_a_model() -> None:
    with pytest.raises(ImageRefused):
        fit_for_model(b"not an image at all", "image/png")


@pytest.mark.parametrize(("size", "shown"), [((1536, 1024), (512, 341)), ((300, 200), (300, 200))])
def test_a_preview_is_a_jpeg_at_most_its_side(
    size: tuple[int, int], shown: tuple[int, int]
) -> None:
    data = _encoded(Image.new("RGBA", size, (200, 10, 10, 128)), "PNG")

    preview, width, height = make_preview(data)

    assert (width, height) == shown
    assert max(width, height) <= PREVIEW_SIDE
    with Image.open(io.BytesIO(preview)) as image:
        assert (image.format, image.size, image.mode) == ("JPEG", shown, "RGB")


def test_a_preview_refuses_what_is_no_image_or_too_large_to_decode() -> None:
    with pytest.raises(ImageRefused) as corrupt:
        make_preview(b"not an image at all")
    huge = _encoded(Image.new("L", (4097, 4096)), "PNG")
    with pytest.raises(ImageRefused) as too_large:
        make_preview(huge)

    assert (corrupt.value.code, too_large.value.code) == (
        ErrorCode.CORRUPT_IMAGE,
        ErrorCode.TOO_LARGE,
    )
