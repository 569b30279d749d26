"""What the access, account, limit and WebSocket tests share: scenes, clients, database dumps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from starlette.applications import Starlette

from storyframe.app import create_app
from storyframe.domain.places import Place, PlaceKind
from storyframe.schema.ids import encode_id
from storyframe.services.container import Services
from storyframe.services.image_places import StoredImage
from storyframe.settings import Settings
from tests.conftest import GraphQLClient

BASE_URL = "http://storyframe.test"
# A primary key no test gets near: the IDs built from it name nothing.
MISSING_PK = 987_654_321

SIGN_UP = """
mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) {
    token
    user { id email }
    userErrors { field message code }
  }
}
"""

Dump = dict[str, list[tuple[Any, ...]]]


async def dump(engine: AsyncEngine) -> Dump:
    """Every row of every table, in a stable order."""
    rows: Dump = {}
    async with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            result = await connection.execute(select(table).order_by(*table.columns))
            rows[table.name] = [tuple(row) for row in result.all()]
    return rows


@asynccontextmanager
async def app_with(settings: Settings, **changes: Any) -> AsyncIterator[Starlette]:
    """An app on the test's database with some settings changed."""
    app = create_app(settings.model_copy(update=changes))
    try:
        yield app
    finally:
        await app.state.runtime.engine.dispose()


@asynccontextmanager
async def client_of(
    app: Starlette, token: str | None = None, address: str = "127.0.0.1"
) -> AsyncIterator[GraphQLClient]:
    """A GraphQL client of `app` sending `token`, if any, from the client `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as http:
        yield GraphQLClient(http)


async def sign_up(gql: GraphQLClient, email: str, password: str) -> str:
    """A new account's token, signed up through the API."""
    payload = await gql.mutate(SIGN_UP, {"input": {"email": email, "password": password}})
    token: str = payload["token"]
    return token


@dataclass(frozen=True, slots=True)
class Ids:
    """Global IDs of one object of each kind in a project."""

    project: str
    video: str
    context: str
    frame: str
    main_chat: str
    message: str
    image: str

    @classmethod
    def missing(cls) -> Ids:
        """IDs of the right types that name nothing."""
        return cls(
            project=encode_id("Project", MISSING_PK),
            video=encode_id("Video", MISSING_PK),
            context=encode_id("Context", MISSING_PK),
            frame=encode_id("Frame", MISSING_PK),
            main_chat=encode_id("MainChat", MISSING_PK),
            message=encode_id("Message", MISSING_PK),
            image=encode_id("Image", MISSING_PK),
        )

    def variables(self) -> dict[str, str]:
        """The IDs as variables `$project`, `$video`, `$context`, `$frame`, `$mainChat`…"""
        return {
            "project": self.project,
            "video": self.video,
            "context": self.context,
            "frame": self.frame,
            "mainChat": self.main_chat,
            "message": self.message,
            "image": self.image,
        }


def _known(pk: int | None) -> int:
    assert pk is not None
    return pk


def stored(key: str) -> StoredImage:
    return StoredImage(
        url=f"https://images.storyframe.test/{key}.png",
        storage_key=f"{key}.png",
        width=640,
        height=360,
        content_type="image/png",
        byte_size=1234,
    )


async def a_full_project(services: Services, name: str) -> Ids:
    """A project with a video, its context and main chat, two frames, messages in each chat,
    the images they made, a gallery upload and a selected frame image."""
    project = _known((await services.projects.create(name)).id)
    video = _known((await services.videos.create(project, "Opening")).id)
    context = _known((await services.reads.contexts_of_videos([video]))[video].id)
    (chat_row,) = (await services.reads.main_chats_of_videos([video]))[video]
    chat = _known(chat_row.id)
    await services.contexts.update(context, "Watercolour, late summer light")
    frame = _known((await services.frames.create(video, "Dawn")).id)
    dusk = _known((await services.frames.create(video, "Dusk")).id)
    frame_place = Place(PlaceKind.FRAME, frame)
    gallery = Place(PlaceKind.GALLERY, project)

    message = _known((await services.chats.post_message(frame_place, "a red sky")).id)
    image = _known((await services.images.add(frame_place, stored(f"{name}-dawn"), message)).id)
    await services.frames.select_image(frame, image)
    await services.images.copy(image, gallery)
    await services.chats.post_message(
        Place(PlaceKind.FRAME, dusk), "the same sky, later", attached_image_ids=[image]
    )
    for place, prompt in (
        (Place(PlaceKind.CONTEXT, context), "the house by the lake"),
        (Place(PlaceKind.MAIN_CHAT, chat), "try a storm"),
    ):
        made = _known((await services.chats.post_message(place, prompt)).id)
        await services.images.add(place, stored(f"{name}-{place.kind.key}"), made)
    await services.images.add(gallery, stored(f"{name}-upload"))
    return Ids(
        project=encode_id("Project", project),
        video=encode_id("Video", video),
        context=encode_id("Context", context),
        frame=encode_id("Frame", frame),
        main_chat=encode_id("MainChat", chat),
        message=encode_id("Message", message),
        image=encode_id("Image", image),
    )
