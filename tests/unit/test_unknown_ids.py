"""An ID that names nothing, given to any service: NOT_FOUND, naming the field it came in, and
nothing changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from storyframe.domain.errors import ErrorCode, NotFound
from storyframe.domain.places import Place, PlaceKind
from tests.support.builders import (
    Domain,
    VideoScene,
    a_frame,
    a_generation,
    a_video,
    an_image,
    domain,
)
from tests.support.images import stored_image

UNKNOWN = 404
ALL_KINDS = [PlaceKind.FRAME, PlaceKind.CONTEXT, PlaceKind.MAIN_CHAT, PlaceKind.GALLERY]
CHAT_KINDS = [PlaceKind.FRAME, PlaceKind.CONTEXT, PlaceKind.MAIN_CHAT]
CHAT_FIELDS = {
    PlaceKind.FRAME: "frameId",
    PlaceKind.CONTEXT: "contextId",
    PlaceKind.MAIN_CHAT: "mainChatId",
    PlaceKind.GALLERY: "galleryId",
}


@dataclass(frozen=True, slots=True)
class World:
    """A video with a frame, a message that made an image in its main chat, and an image in the
    frame that also appears in the gallery: something of every kind for a refusal to leave be."""

    scene: VideoScene
    frame: Place
    image: int


async def _world(d: Domain) -> World:
    scene = await a_video(d)
    frame = await a_frame(d, scene.video_id)
    await a_generation(d, scene.main_chat)
    image = await an_image(d, frame)
    await d.images.copy(image, scene.gallery)
    return World(scene, frame, image)


Call = Callable[[Domain, World], Awaitable[Any]]


def _unknown(name: str, field: str, call: Call) -> Any:
    return pytest.param(call, field, id=name)


def _in_an_unknown_place(kind: PlaceKind) -> list[Any]:
    """What names a place of the kind that does not exist."""
    place = Place(kind, UNKNOWN)
    return [
        _unknown(
            f"add-to-unknown-{kind.key}",
            "targetId",
            lambda d, _: d.seeds.add_image(place, stored_image()),
        ),
        _unknown(
            f"copy-to-unknown-{kind.key}", "targetId", lambda d, w: d.images.copy(w.image, place)
        ),
        _unknown(
            f"move-from-unknown-{kind.key}",
            "sourceId",
            lambda d, w: d.images.move(w.image, place, w.frame),
        ),
        _unknown(
            f"move-to-unknown-{kind.key}",
            "targetId",
            lambda d, w: d.images.move(w.image, w.frame, place),
        ),
        _unknown(
            f"remove-from-unknown-{kind.key}",
            "sourceId",
            lambda d, w: d.images.remove(w.image, place),
        ),
        _unknown(
            f"post-message-in-unknown-{kind.key}",
            CHAT_FIELDS[kind],
            lambda d, _: d.seeds.post_message(place, "a lighthouse"),
        ),
    ]


def _clear_unknown(kind: PlaceKind) -> Any:
    place = Place(kind, UNKNOWN)
    return _unknown(
        f"clear-history-of-unknown-{kind.key}", "id", lambda d, _: d.chats.clear_history(place)
    )


UNKNOWN_IDS = [
    _unknown("rename-project", "id", lambda d, _: d.projects.rename(UNKNOWN, "New")),
    _unknown("delete-project", "id", lambda d, _: d.projects.delete(UNKNOWN)),
    _unknown("create-video", "projectId", lambda d, _: d.videos.create(UNKNOWN, "Opening")),
    _unknown("rename-video", "id", lambda d, _: d.videos.rename(UNKNOWN, "Finale")),
    _unknown("delete-video", "id", lambda d, _: d.videos.delete(UNKNOWN)),
    _unknown("update-context", "id", lambda d, _: d.contexts.update(UNKNOWN, "Harbour")),
    _unknown("create-main-chat", "videoId", lambda d, _: d.main_chats.create(UNKNOWN, "Ideas")),
    _unknown("rename-main-chat", "id", lambda d, _: d.main_chats.rename(UNKNOWN, "Storyboard")),
    _unknown("delete-main-chat", "id", lambda d, _: d.main_chats.delete(UNKNOWN)),
    _unknown("create-frame", "videoId", lambda d, _: d.frames.create(UNKNOWN, "A")),
    _unknown("rename-frame", "id", lambda d, _: d.frames.rename(UNKNOWN, "A")),
    _unknown("reorder-frame", "id", lambda d, _: d.frames.reorder(UNKNOWN, 0)),
    _unknown(
        "select-unknown-image", "imageId", lambda d, w: d.frames.select_image(w.frame.id, UNKNOWN)
    ),
    _unknown(
        "select-in-unknown-frame", "frameId", lambda d, w: d.frames.select_image(UNKNOWN, w.image)
    ),
    _unknown("delete-frame", "id", lambda d, _: d.frames.delete(UNKNOWN)),
    _unknown("copy-unknown-image", "imageId", lambda d, w: d.images.copy(UNKNOWN, w.scene.gallery)),
    _unknown(
        "move-unknown-image",
        "imageId",
        lambda d, w: d.images.move(UNKNOWN, w.scene.context, w.scene.gallery),
    ),
    _unknown(
        "remove-unknown-image", "imageId", lambda d, w: d.images.remove(UNKNOWN, w.scene.gallery)
    ),
    _unknown("delete-image", "id", lambda d, _: d.images.delete(UNKNOWN)),
    *[unknown for kind in ALL_KINDS for unknown in _in_an_unknown_place(kind)],
    *[_clear_unknown(kind) for kind in CHAT_KINDS],
]


@pytest.mark.parametrize(("call", "field"), UNKNOWN_IDS)
async def test_an_unknown_id_is_not_found_and_changes_nothing(call: Call, field: str) -> None:
    # given
    d = domain()
    world = await _world(d)
    before = d.uow.snapshot()

    # when
    with pytest.raises(NotFound) as raised:
        await call(d, world)

    # then
    assert raised.value.code is ErrorCode.NOT_FOUND
    assert raised.value.field == [field]
    assert d.uow.snapshot() == before
