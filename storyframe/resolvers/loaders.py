"""One DataLoader per relation, each answering a whole batch of keys with one read."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from sqlmodel import SQLModel
from strawberry.dataloader import DataLoader

from storyframe.db import tables
from storyframe.domain.jobs import JobQueue
from storyframe.domain.pages import PageRequest
from storyframe.domain.ports import Reader
from storyframe.schema.chats import Context, Frame, MainChat, Message
from storyframe.schema.connection import Connection
from storyframe.schema.diagnostics import DiagnosticsRun
from storyframe.schema.exports import Export
from storyframe.schema.generation import Generation
from storyframe.schema.images import Image
from storyframe.schema.loader import Loader
from storyframe.schema.projects import Project, Video
from storyframe.schema.request_context import LoaderFactory, Loaders
from storyframe.services.container import Services

K = TypeVar("K", bound=Hashable)
P = TypeVar("P", bound=Hashable)
V = TypeVar("V")
Row = TypeVar("Row", bound=SQLModel)


def _by_id(reader: Reader, model: type[Row], wrap: Callable[[Row], V]) -> DataLoader[int, V | None]:
    async def load(ids: list[int]) -> list[V | None]:
        rows = await reader.get_many(model, ids)
        return [wrap(rows[i]) if i in rows else None for i in ids]

    return Loader(load)


def _grouped(
    fetch: Callable[[list[K]], Awaitable[Mapping[K, Sequence[Any]]]], wrap: Callable[[Any], V]
) -> DataLoader[K, list[V]]:
    async def load(keys: list[K]) -> list[list[V]]:
        found = await fetch(keys)
        return [[wrap(row) for row in found.get(key, ())] for key in keys]

    return Loader(load)


def _counts(fetch: Callable[[list[K]], Awaitable[Mapping[K, int]]]) -> DataLoader[K, int]:
    async def load(keys: list[K]) -> list[int]:
        found = await fetch(keys)
        return [found.get(key, 0) for key in keys]

    return Loader(load)


def _paged(
    fetch: Callable[[list[P], PageRequest], Awaitable[Mapping[P, Sequence[Any]]]],
    wrap: Callable[[Any], V],
    counter: Callable[[], DataLoader[P, int]],
) -> DataLoader[tuple[P, PageRequest], Connection[V]]:
    """Pages of each parent: one read per distinct page request in the batch."""

    async def load(keys: list[tuple[P, PageRequest]]) -> list[Connection[V]]:
        by_page: dict[PageRequest, list[P]] = defaultdict(list)
        for parent, page in keys:
            by_page[page].append(parent)
        found: dict[tuple[P, PageRequest], Sequence[Any]] = {}
        for page, parents in by_page.items():
            rows = await fetch(parents, page)
            found.update({(parent, page): rows.get(parent, ()) for parent in parents})
        counts = counter()
        return [
            Connection.of([wrap(row) for row in found[key]], key[1], (counts, key[0]))
            for key in keys
        ]

    return Loader(load)


async def _contexts_of_videos(reader: Reader, ids: list[int]) -> list[Context | None]:
    found = await reader.contexts_of_videos(ids)
    return [Context.from_row(found[i]) if i in found else None for i in ids]


async def _generations_of_messages(reader: Reader, ids: list[int]) -> list[Generation | None]:
    found = await reader.generations_of_messages(ids)
    return [Generation.from_row(found[i]) if i in found else None for i in ids]


async def _count_projects(reader: Reader, keys: list[int]) -> list[int]:
    total = await reader.count_projects()
    return [total for _ in keys]


FACTORIES: dict[str, LoaderFactory] = {
    "project": lambda r, _: _by_id(r, tables.Project, Project.from_row),
    "video": lambda r, _: _by_id(r, tables.Video, Video.from_row),
    "context": lambda r, _: _by_id(r, tables.Context, Context.from_row),
    "frame": lambda r, _: _by_id(r, tables.Frame, Frame.from_row),
    "main_chat": lambda r, _: _by_id(r, tables.MainChat, MainChat.from_row),
    "message": lambda r, _: _by_id(r, tables.Message, Message.from_row),
    "image": lambda r, _: _by_id(r, tables.Image, Image.from_row),
    "generation": lambda r, _: _by_id(r, tables.Generation, Generation.from_row),
    "export": lambda r, _: _by_id(r, tables.Export, Export.from_row),
    "diagnostics_run": lambda r, _: _by_id(r, tables.DiagnosticRun, DiagnosticsRun.from_row),
    "generation_of_message": lambda r, _: Loader(partial(_generations_of_messages, r)),
    "videos_of_project": lambda r, loaders: _paged(
        r.videos_of_projects, Video.from_row, lambda: loaders.video_count
    ),
    "context_of_video": lambda r, _: Loader(partial(_contexts_of_videos, r)),
    "frames_of_video": lambda r, _: _grouped(r.frames_of_videos, Frame.from_row),
    "main_chats_of_video": lambda r, _: _grouped(r.main_chats_of_videos, MainChat.from_row),
    "messages_of_chat": lambda r, loaders: _paged(
        r.messages_of_chats, Message.from_row, lambda: loaders.message_count
    ),
    "images_of_message": lambda r, _: _grouped(r.images_of_messages, Image.from_row),
    "attachments_of_message": lambda r, _: _grouped(r.attachments_of_messages, Image.from_row),
    "images_of_place": lambda r, loaders: _paged(
        r.images_of_places, Image.from_row, lambda: loaders.place_image_count
    ),
    "images_of_project": lambda r, loaders: _paged(
        r.images_of_projects, Image.from_row, lambda: loaders.project_image_count
    ),
    "places_of_image": lambda r, _: _grouped(r.places_of_images, lambda place: place),
    "project_count": lambda r, _: Loader(partial(_count_projects, r)),
    "video_count": lambda r, _: _counts(r.count_videos),
    "project_image_count": lambda r, _: _counts(r.count_project_images),
    "frame_count": lambda r, _: _counts(r.count_frames),
    "message_count": lambda r, _: _counts(r.count_messages),
    "place_image_count": lambda r, _: _counts(r.count_place_images),
    "queue_position": lambda _, loaders: Loader(partial(_positions, loaders.jobs)),
}
"""How each of a request's loaders is made, from its reader (and the other loaders it uses)."""


async def _positions(jobs: JobQueue | None, ids: list[int]) -> list[int | None]:
    found = await jobs.positions(ids) if jobs is not None else {}
    return [found.get(generation_id) for generation_id in ids]


def make_loaders(services: Services) -> Loaders:
    """The request's loaders, each made when first asked for."""
    return Loaders(services.reads, FACTORIES, services.generation.generator.jobs)


assert set(FACTORIES) == set(Loaders.__annotations__), "every loader has its factory"
