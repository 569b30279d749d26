"""Messages and images recorded straight through a unit of work, the way a generation and an
upload record theirs, so a test (or a benchmark) can start from them without a provider or a file.

`Seeds` works on primary keys and places; the functions below it take and return global IDs, as
the integration tests hold them. `a_storyboard` is the video the query-count tests and the
storyboard benchmark read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from storyframe.db.repository import SqlUnitOfWork
from storyframe.db.tables import Image, Message
from storyframe.domain.errors import NotFound
from storyframe.domain.places import Place, PlaceKind
from storyframe.domain.ports import UnitOfWork
from storyframe.schema.ids import encode_id
from storyframe.services.chats import check_message, record_message
from storyframe.services.image_places import StoredImage, add_images
from tests.support.ids import known, pk_of, place_of
from tests.support.images import stored_image

if TYPE_CHECKING:
    from storyframe.runtime import Runtime
    from storyframe.services.container import Services


class Seeds:
    """Messages and images added through one unit of work (and so on behalf of its owner)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def post_message(
        self,
        chat: Place,
        prompt: str,
        *,
        with_context: bool = False,
        attached_image_ids: Sequence[int] = (),
    ) -> Message:
        """The user's prompt recorded in the chat, as a generation records it before its work."""
        cleaned, attached = check_message(prompt, attached_image_ids)
        async with self._uow() as repo:
            message, _ = await record_message(repo, chat, cleaned, with_context, attached)
            await repo.commit()
        return message

    async def add_image(
        self, place: Place, stored: StoredImage, message_id: int | None = None
    ) -> Image:
        """Stored bytes recorded as an image of the place's project, appearing in the place
        (made by `message_id`, if given)."""
        async with self._uow() as repo:
            owner = await repo.owner_of(place)
            if owner is None:
                raise NotFound(place.label, ["targetId"])
            (image,) = await add_images(repo, owner, place, [stored], message_id)
            await repo.commit()
        return image


def seeds_for(runtime: Runtime, user_id: int) -> Seeds:
    """Seeds on the runtime's database, on behalf of the user."""
    return Seeds(SqlUnitOfWork(runtime.sessions, user_id))


# --- by global ID -----------------------------------------------------------------------------


async def post_message(
    seeds: Seeds,
    chat_id: str,
    prompt: str = "a prompt",
    *,
    with_context: bool = False,
    attached_image_ids: Sequence[str] = (),
) -> str:
    message = await seeds.post_message(
        place_of(chat_id),
        prompt,
        with_context=with_context,
        attached_image_ids=[pk_of(i) for i in attached_image_ids],
    )
    return encode_id("Message", known(message.id))


async def add_image(
    seeds: Seeds, place_id: str, *, message_id: str | None = None, key: str | None = None
) -> str:
    """An image appearing in the place (uploaded, or produced by `message_id`)."""
    made_by = pk_of(message_id) if message_id is not None else None
    image = await seeds.add_image(place_of(place_id), stored_image(key), made_by)
    return encode_id("Image", known(image.id))


async def generate(
    seeds: Seeds, chat_id: str, prompt: str = "a prompt", images: int = 1
) -> tuple[str, list[str]]:
    """A message in the chat and the images it produced, which appear in that chat."""
    message_id = await post_message(seeds, chat_id, prompt)
    produced = [await add_image(seeds, chat_id, message_id=message_id) for _ in range(images)]
    return message_id, produced


# --- the storyboard ---------------------------------------------------------------------------


async def a_storyboard(
    services: Services,
    seeds: Seeds,
    frames: int,
    *,
    messages: int,
    images: int,
    stored: Callable[[], StoredImage] = stored_image,
) -> int:
    """A video whose every frame has an uploaded reference image, `messages` messages attaching
    it, the `images` images each of them produced, and the first of those selected: its key."""
    project = known((await services.projects.create("Storyboard")).id)
    video = known((await services.videos.create(project, "Video")).id)
    for index in range(frames):
        frame = known((await services.frames.create(video, f"Frame {index}")).id)
        place = Place(PlaceKind.FRAME, frame)
        reference = known((await seeds.add_image(place, stored())).id)
        produced: list[int] = []
        for turn in range(messages):
            message = await seeds.post_message(
                place, f"prompt {index}.{turn}", attached_image_ids=[reference]
            )
            for _ in range(images):
                image = await seeds.add_image(place, stored(), known(message.id))
                produced.append(known(image.id))
        await services.frames.select_image(frame, produced[0])
    return video
