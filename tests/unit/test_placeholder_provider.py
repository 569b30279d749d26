"""PlaceholderProvider: offline PNGs that say what they stand for, and an honest `describe`."""

from __future__ import annotations

import io
import logging
import re
import struct
import zlib

import pytest
from PIL import ExifTags, Image, ImageChops, PngImagePlugin

from storyframe.domain.image_provider import (
    ImageCall,
    ImageProvider,
    Partial,
    Reference,
    RemoteModel,
)
from storyframe.domain.model_catalogue import PLACEHOLDER_MODEL
from storyframe.providers.placeholder import (
    SOFTWARE,
    PlaceholderProvider,
    colour_name,
    parse_size,
)

Colour = tuple[int, int, int]

MAGENTA: Colour = (255, 0, 255)  # never part of a placeholder's own drawing
RED: Colour = (255, 0, 0)
PROMPT = "A lighthouse on a cliff at dusk, waves crashing below"


def call(
    prompt: str = PROMPT,
    *,
    count: int = 1,
    size: str = "auto",
    references: tuple[Reference, ...] = (),
    caption: str = "Scene 1",
    first_index: int = 0,
    partial_images: int = 0,
) -> ImageCall:
    return ImageCall(
        prompt=prompt,
        model=PLACEHOLDER_MODEL,
        count=count,
        size=size,
        quality="auto",
        references=references,
        caption=caption,
        first_index=first_index,
        partial_images=partial_images,
    )


def encoded(colour: Colour, size: tuple[int, int], format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=format)
    return buffer.getvalue()


def reference(data: bytes, filename: str = "reference.png") -> Reference:
    return Reference(data=data, content_type="image/png", filename=filename)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` pixels, with almost no data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def opened(data: bytes) -> PngImagePlugin.PngImageFile:
    image = Image.open(io.BytesIO(data), formats=["PNG"])
    assert isinstance(image, PngImagePlugin.PngImageFile)
    image.load()
    return image


def colours_of(image: Image.Image) -> dict[Colour, int]:
    """How many pixels of each colour the image has."""
    counted: dict[Colour, int] = {}
    for count, value in image.convert("RGB").getcolors(image.width * image.height) or []:
        assert isinstance(value, tuple)
        red, green, blue = value
        counted[red, green, blue] = count
    return counted


def count_of(colour: Colour, image: Image.Image) -> int:
    return colours_of(image).get(colour, 0)


def magentaish(image: Image.Image) -> int:
    """Pixels of about MAGENTA: a JPEG does not keep it exactly."""
    return sum(
        count
        for (red, green, blue), count in colours_of(image).items()
        if red > 230 and green < 30 and blue > 230
    )


@pytest.fixture
def provider() -> PlaceholderProvider:
    return PlaceholderProvider()


# --- what it is ---------------------------------------------------------------------------------


async def test_is_an_image_provider_named_placeholder(provider: PlaceholderProvider) -> None:
    as_protocol: ImageProvider = provider  # checked by mypy
    assert as_protocol.name == "placeholder"
    assert as_protocol.placeholder is True
    assert await provider.models() == [RemoteModel(PLACEHOLDER_MODEL)]
    await provider.aclose()


# --- generate -----------------------------------------------------------------------------------


async def test_auto_size_makes_a_1024_square_png(provider: PlaceholderProvider) -> None:
    result = await provider.generate(call(size="auto"))

    assert result.usage is None
    [produced] = result.images
    assert produced.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert produced.revised_prompt is None
    image = opened(produced.data)
    assert image.format == "PNG"
    assert image.size == (1024, 1024)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1536x1024", (1536, 1024)),
        ("1024x1536", (1024, 1536)),
        ("640x480", (640, 480)),
        ("100x5000", (256, 2048)),  # each side clamped
        ("not a size", (1024, 1024)),
    ],
)
async def test_size_is_the_one_asked_for(
    provider: PlaceholderProvider, size: str, expected: tuple[int, int]
) -> None:
    [produced] = (await provider.generate(call(size=size))).images
    assert opened(produced.data).size == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("auto", (1024, 1024)),
        ("AUTO", (1024, 1024)),
        ("512X768", (512, 768)),
        (" 300x300 ", (300, 300)),
        ("0x0", (256, 256)),
        ("99999x1", (2048, 256)),
        ("1024x", (1024, 1024)),
        ("-5x100", (1024, 1024)),
        ("", (1024, 1024)),
    ],
)
def test_parse_size(size: str, expected: tuple[int, int]) -> None:
    assert parse_size(size) == expected


async def test_count_is_honoured(provider: PlaceholderProvider) -> None:
    result = await provider.generate(call(count=3, size="256x256"))
    assert len(result.images) == 3
    assert len({produced.data for produced in result.images}) == 3
    assert (await provider.generate(call(count=0))).images == []


class Partials(list[Partial]):
    """A sink that keeps the partial images it is handed."""

    async def __call__(self, partial: Partial) -> None:
        self.append(partial)


def _distance(preview: bytes, final: Image.Image) -> float:
    """How far a preview is from the final picture: the mean absolute difference of their
    pixels, at the preview's size."""
    with Image.open(io.BytesIO(preview), formats=["JPEG"]) as image:
        shown = image.convert("RGB")
    expected = final.convert("RGB").resize(shown.size, Image.Resampling.BOX)
    difference = ImageChops.difference(shown, expected).convert("L")
    return sum(i * n for i, n in enumerate(difference.histogram())) / (shown.width * shown.height)


async def test_previews_of_the_picture_come_before_it_coarsest_first(
    provider: PlaceholderProvider,
) -> None:
    partials = Partials()

    result = await provider.generate(call(size="1024x512", partial_images=3), partials)

    [produced] = result.images
    final = opened(produced.data)
    assert final.size == (1024, 512)
    assert [partial.index for partial in partials] == [0, 1, 2]
    for partial in partials:
        with Image.open(io.BytesIO(partial.data)) as preview:
            assert preview.format == "JPEG"
            assert preview.size == (256, 128)  # small, of the picture's shape
        assert len(partial.data) < len(produced.data)
    distances = [_distance(partial.data, final) for partial in partials]
    # the same picture, closer to it with each preview
    assert distances == sorted(distances, reverse=True)
    assert distances[0] > distances[-1]
    assert distances[-1] < 20
    # a preview of another picture is further from this one than the coarsest
    other = opened((await provider.generate(call("A meadow", size="1024x512"))).images[0].data)
    assert _distance(partials[0].data, other) > distances[-1]


async def test_fewer_previews_are_the_most_detailed_and_at_most_three(
    provider: PlaceholderProvider,
) -> None:
    one, five = Partials(), Partials()

    await provider.generate(call(size="256x256", partial_images=1), one)
    await provider.generate(call(size="256x256", partial_images=5), five)

    assert [partial.index for partial in one] == [0]
    assert [partial.index for partial in five] == [0, 1, 2]


@pytest.mark.parametrize(
    ("count", "partial_images", "sink"),
    [
        pytest.param(1, 0, True, id="none-asked"),
        pytest.param(2, 2, True, id="several-images"),
        pytest.param(1, 2, False, id="no-sink"),
    ],
)
async def test_previews_only_for_one_image_with_partials_and_a_sink(
    provider: PlaceholderProvider, count: int, partial_images: int, sink: bool
) -> None:
    partials = Partials()

    result = await provider.generate(
        call(count=count, size="256x256", partial_images=partial_images),
        partials if sink else None,
    )

    assert len(result.images) == count
    assert partials == []


async def test_a_sink_that_fails_does_not_fail_the_image(
    provider: PlaceholderProvider, caplog: pytest.LogCaptureFixture
) -> None:
    offered: list[int] = []

    async def failing(partial: Partial) -> None:
        offered.append(partial.index)
        raise OSError("no room for the preview")

    with caplog.at_level(logging.ERROR, logger="storyframe.providers"):
        result = await provider.generate(call(size="256x256", partial_images=2), failing)

    assert len(result.images) == 1
    assert offered == [0, 1]
    assert len([r for r in caplog.records if r.name == "storyframe.providers"]) == 2


async def test_the_same_prompt_twice_gives_different_images(
    provider: PlaceholderProvider,
) -> None:
    [first] = (await provider.generate(call(size="512x512"))).images
    [second] = (await provider.generate(call(size="512x512"))).images

    assert first.data != second.data
    difference = ImageChops.difference(
        opened(first.data).convert("RGB"), opened(second.data).convert("RGB")
    )
    assert difference.getbbox() is not None
    # Not a few pixels: the backgrounds differ all over, by more than a shade in some channel.
    red, green, blue = difference.split()
    largest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    assert sum(largest.histogram()[17:]) > 512 * 512 // 2


async def test_metadata_marks_a_placeholder_and_carries_the_prompt(
    provider: PlaceholderProvider,
) -> None:
    [produced] = (await provider.generate(call(size="256x256"))).images
    image = opened(produced.data)
    assert image.text["Software"] == SOFTWARE == "Storyframe placeholder"
    assert image.text["Description"] == PROMPT


async def test_metadata_keeps_2000_characters_of_a_long_prompt(
    provider: PlaceholderProvider,
) -> None:
    prompt = "word " * 3000
    [produced] = (await provider.generate(call(prompt, size="256x256"))).images
    assert opened(produced.data).text["Description"] == prompt[:2000]


@pytest.mark.parametrize(
    "prompt",
    [
        "Un café au crépuscule, près de la tour Eiffel",
        "夕暮れの灯台 — 波が砕ける",
        "lone surrogate \ud800 and a NUL \0 and a tab\tin it",
        "",
        "x" * 5000,  # one word far wider than a line
    ],
)
async def test_any_prompt_is_drawn_and_recorded(provider: PlaceholderProvider, prompt: str) -> None:
    [produced] = (await provider.generate(call(prompt, caption=prompt, size="512x512"))).images
    image = opened(produced.data)
    assert image.size == (512, 512)
    assert "\0" not in image.text["Description"]


async def test_references_are_drawn(provider: PlaceholderProvider) -> None:
    magenta = reference(encoded(MAGENTA, (300, 200)))

    [plain] = (await provider.generate(call(size="1024x1024"))).images
    [with_reference] = (
        await provider.generate(call(size="1024x1024", references=(magenta,)))
    ).images

    assert count_of(MAGENTA, opened(plain.data)) == 0
    drawn = opened(with_reference.data)
    assert count_of(MAGENTA, drawn) > 5000
    # In the strip near the bottom, not over the text.
    top = drawn.height * 72 // 100
    assert count_of(MAGENTA, drawn.crop((0, top, drawn.width, drawn.height))) == count_of(
        MAGENTA, drawn
    )


async def test_a_reference_is_turned_as_its_exif_says_and_stays_in_the_strip(
    provider: PlaceholderProvider,
) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored landscape, shown turned 90 degrees: portrait
    buffer = io.BytesIO()
    Image.new("RGB", (400, 100), MAGENTA).save(buffer, format="JPEG", exif=exif.tobytes())
    turned = reference(buffer.getvalue(), "turned.jpg")

    [produced] = (await provider.generate(call(size="1024x1024", references=(turned,)))).images

    drawn = opened(produced.data)
    top = drawn.height * 72 // 100
    strip = drawn.crop((0, top, drawn.width, drawn.height))
    assert magentaish(strip) == magentaish(drawn) > 1000
    difference = ImageChops.difference(strip.convert("RGB"), Image.new("RGB", strip.size, MAGENTA))
    red, green, blue = (
        channel.point(lambda value: 255 if value < 40 else 0) for channel in difference.split()
    )
    near = ImageChops.multiply(ImageChops.multiply(red, green), blue)
    left, upper, right, lower = near.getbbox() or (0, 0, 0, 0)
    assert lower - upper > 2 * (right - left)  # portrait


async def test_a_bad_reference_is_skipped(provider: PlaceholderProvider) -> None:
    truncated = encoded(RED, (200, 200))[:60]
    references = (
        reference(b"not an image at all", "junk.png"),
        reference(truncated, "truncated.png"),
        reference(b"", "empty.png"),
        reference(encoded(MAGENTA, (200, 200), "JPEG"), "good.jpg"),
    )

    [produced] = (await provider.generate(call(size="512x512", references=references))).images

    drawn = opened(produced.data)
    assert drawn.size == (512, 512)
    assert magentaish(drawn) > 0


@pytest.mark.parametrize(("width", "height"), [(10_000, 10_000), (30_000, 30_000)])
async def test_a_huge_reference_is_skipped_without_warnings(
    provider: PlaceholderProvider, width: int, height: int
) -> None:
    # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that; warnings are errors here.
    huge = reference(png_claiming(width, height), "huge.png")
    [produced] = (await provider.generate(call(size="256x256", references=(huge,)))).images
    assert opened(produced.data).size == (256, 256)


async def test_many_references_fit_in_the_strip(provider: PlaceholderProvider) -> None:
    references = tuple(reference(encoded(MAGENTA, (400, 100))) for _ in range(20))
    [produced] = (await provider.generate(call(size="256x256", references=references))).images
    assert count_of(MAGENTA, opened(produced.data)) > 0


# --- describe -----------------------------------------------------------------------------------


async def test_describe_names_size_format_and_colour(provider: PlaceholderProvider) -> None:
    images = [
        reference(encoded(RED, (100, 50))),
        reference(encoded((0, 0, 255), (64, 32), "JPEG"), "blue.jpg"),
    ]

    description = await provider.analyze(images, "What is in these?", "gpt-4.1-mini")

    assert description.model == PLACEHOLDER_MODEL
    assert description.usage is None
    lines = description.text.splitlines()
    assert "placeholder" in lines[0].lower()
    assert "no vision model" in lines[0]
    assert "Question: What is in these?" in lines
    assert lines[-2] == "Image 1: 100\u00d750 PNG, entirely red (#ff0000)."
    assert lines[-1].startswith("Image 2: 64\u00d732 JPEG, ")
    assert "blue" in lines[-1]


async def test_a_description_of_references_does_not_repeat_the_instruction(
    provider: PlaceholderProvider,
) -> None:
    description = await provider.describe_references([reference(encoded(RED, (100, 50)))], "m")

    assert description.text.splitlines() == [
        "Placeholder description: no vision model is configured, so only each image's size, "
        "format and main colours are given.",
        "Image 1: 100\u00d750 PNG, entirely red (#ff0000).",
    ]


async def test_describe_names_two_colours(provider: PlaceholderProvider) -> None:
    image = Image.new("RGB", (200, 100), (255, 255, 255))
    image.paste((10, 20, 120), (100, 0, 200, 100))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", lossless=True)

    description = await provider.analyze([reference(buffer.getvalue())], "", "m")

    [line] = [line for line in description.text.splitlines() if line.startswith("Image 1")]
    assert line.startswith("Image 1: 200\u00d7100 WebP, mostly ")
    assert "white (#ffffff)" in line
    assert "dark blue" in line
    assert "Question" not in description.text


async def test_describe_handles_an_undecodable_image(provider: PlaceholderProvider) -> None:
    images = [
        reference(b"\x89PNG\r\n\x1a\n garbage"),
        reference(encoded(RED, (10, 10))),
        reference(png_claiming(30_000, 30_000)),
    ]

    description = await provider.analyze(images, "Describe", "m")

    lines = description.text.splitlines()
    assert "Image 1: not a readable image." in lines
    assert "Image 2: 10\u00d710 PNG, entirely red (#ff0000)." in lines
    assert "Image 3: not a readable image." in lines


async def test_describe_without_images(provider: PlaceholderProvider) -> None:
    description = await provider.analyze([], "Anything?", "m")
    assert description.text.splitlines()[-1] == "No images were given."


async def test_describe_a_placeholder(provider: PlaceholderProvider) -> None:
    [produced] = (await provider.generate(call(size="640x480"))).images
    description = await provider.analyze([reference(produced.data)], "", "m")
    # The background is random: its colours may or may not leave one of them dominant.
    assert re.search(
        r"Image 1: 640\u00d7480 PNG, (mostly|entirely) [a-z ]+ \(#[0-9a-f]{6}\)", description.text
    )


@pytest.mark.parametrize(
    ("colour", "name"),
    [
        ((255, 0, 0), "red"),
        ((0, 0, 0), "black"),
        ((250, 250, 250), "white"),
        ((20, 30, 110), "dark blue"),
        ((0, 150, 10), "green"),
        ((250, 220, 20), "yellow"),
        ((128, 128, 128), "grey"),
    ],
)
def test_colour_names(colour: Colour, name: str) -> None:
    assert colour_name(colour) == name
