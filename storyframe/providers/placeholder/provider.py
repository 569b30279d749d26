"""The placeholder provider itself: images drawn offline, and descriptions made without a vision
model."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from typing import Final

from storyframe.domain.image_provider import (
    CallResult,
    Description,
    ImageCall,
    Partial,
    PartialSink,
    Produced,
    Reference,
    RemoteModel,
    offer_partial,
)
from storyframe.domain.model_catalogue import PLACEHOLDER_MODEL
from storyframe.providers.placeholder.describing import summarise
from storyframe.providers.placeholder.drawing import (
    Layout,
    reference_thumbnails,
    render,
)
from storyframe.providers.placeholder.shared import (
    ELLIPSIS,
)

_DEFAULT_SIDE: Final = 1024
_MIN_SIDE: Final = 256
_MAX_SIDE: Final = 2048
_MAX_QUESTION: Final = 1000  # characters of a describe instruction echoed back
_GOLDEN_STEP: Final = 0.6180339887498949  # hue step between images: 1/phi, the widest spread


class PlaceholderProvider:
    """An `ImageProvider` that needs no network and no key."""

    def __init__(self) -> None:
        # Where the next image's hue sits on the colour wheel; see `_take_hue`.
        self._hue = secrets.randbelow(1 << 16) / (1 << 16)

    def _take_hue(self) -> float:
        """The hue of the next image: consecutive images lie at least 0.38 of the wheel apart."""
        hue = self._hue
        self._hue = (hue + _GOLDEN_STEP) % 1.0
        return hue

    @property
    def placeholder(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return "placeholder"

    async def generate(self, call: ImageCall, on_partial: PartialSink | None = None) -> CallResult:
        if call.count < 1:
            return CallResult(images=[], usage=None)
        width, height = parse_size(call.size)
        layout = Layout.of(width, height, strip=bool(call.references))
        thumbnails = (
            await asyncio.to_thread(reference_thumbnails, call.references, layout.thumb_box)
            if call.references
            else []
        )
        # With previews (one image, a sink for them), blurred small JPEGs of the same picture go
        # to the sink first, as a model streaming partial images would send them.
        previews = call.previews if on_partial is not None else 0
        rendered = await asyncio.gather(
            *(
                asyncio.to_thread(
                    render,
                    layout,
                    prompt=call.prompt,
                    caption=call.caption,
                    number=call.first_index + i + 1,
                    thumbnails=thumbnails,
                    nonce=secrets.token_bytes(16),
                    hue=hue,
                    previews=previews,
                )
                for i, hue in enumerate([self._take_hue() for _ in range(call.count)])
            )
        )
        for _, partials in rendered:
            for index, partial in enumerate(partials):
                assert on_partial is not None  # previews are drawn only for a sink
                await offer_partial(on_partial, Partial(index, partial))
        images = [data for data, _ in rendered]
        return CallResult(images=[Produced(data=data) for data in images], usage=None)

    async def describe_references(self, images: Sequence[Reference], model: str) -> Description:
        # appended to a generation's prompt: the instruction is the server's, not the user's
        heading = (
            "Placeholder description: no vision model is configured, so only each image's "
            "size, format and main colours are given."
        )
        return await _summarised(images, [heading])

    async def analyze(self, images: Sequence[Reference], question: str, model: str) -> Description:
        lines = [
            "Placeholder analysis: no vision model is configured, so only each image's size, "
            "format and main colours are reported; the question is not answered."
        ]
        asked = " ".join(question.split())
        if len(asked) > _MAX_QUESTION:
            asked = asked[: _MAX_QUESTION - 1].rstrip() + ELLIPSIS
        if asked:
            lines.append(f"Question: {asked}")
        return await _summarised(images, lines)

    async def complete(self, prompt: str, model: str) -> Description:
        text = (
            "Placeholder answer: no text model is configured, so the prompt is not answered "
            "(made offline)."
        )
        return Description(text=text, model=PLACEHOLDER_MODEL, usage=None)

    async def models(self) -> list[RemoteModel]:
        return [RemoteModel(PLACEHOLDER_MODEL)]

    async def aclose(self) -> None:
        return None


def parse_size(size: str) -> tuple[int, int]:
    """The pixels of a size "WxH", each side clamped to 256..2048; 1024x1024 for "auto"."""
    width, separator, height = size.strip().lower().partition("x")
    if not (separator and width.isdecimal() and height.isdecimal()):
        return _DEFAULT_SIDE, _DEFAULT_SIDE
    return _clamp(int(width)), _clamp(int(height))


def _clamp(side: int) -> int:
    return max(_MIN_SIDE, min(_MAX_SIDE, side))


async def _summarised(images: Sequence[Reference], lines: list[str]) -> Description:
    """`lines`, then one line an image: its size, format and main colours."""
    summaries = await asyncio.gather(
        *(asyncio.to_thread(summarise, image.data) for image in images)
    )
    if not summaries:
        lines.append("No images were given.")
    for number, summary in enumerate(summaries, start=1):
        lines.append(f"Image {number}: {summary or 'not a readable image'}.")
    return Description(text="\n".join(lines), model=PLACEHOLDER_MODEL, usage=None)
