"""The Query root: fetch by ID, list projects. Each fetch prefetches what the query selects."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.dataloader import DataLoader

from storyframe.domain.errors import DomainError, ErrorCode, Unauthenticated
from storyframe.domain.pages import MAX_PAGE, PageRequest
from storyframe.schema.chats import Context, Frame, MainChat
from storyframe.schema.connection import Connection
from storyframe.schema.ids import decode_cursor, decode_pk, parse_id
from storyframe.schema.images import Image
from storyframe.schema.nodes import AFTER, FIRST, Node
from storyframe.schema.projects import Project, Video
from storyframe.schema.relations import prefetch_below
from storyframe.schema.request_context import Info_


async def _fetched(info: Info_, loader: DataLoader[int, Any], pk: int) -> Any:
    found = await loader.load(pk)
    if found is not None:
        await prefetch_below(info, [found])
    return found


def _by_id(type_name: str, description: str) -> Any:
    async def resolve(info: Info_, id: strawberry.ID) -> Any:
        return await _fetched(
            info, info.context.loaders.of_type(type_name), decode_pk(id, type_name, "id")
        )

    return strawberry.field(resolver=resolve, description=description)


@strawberry.type
class Query:
    @strawberry.field(description="Any object by its global ID; null when there is none.")
    async def node(self, info: Info_, id: strawberry.ID) -> Node | None:
        if info.context.viewer is None:  # whatever the ID names, or fails to
            raise Unauthenticated
        parsed = parse_id(id)
        if parsed is None:
            raise DomainError(ErrorCode.INVALID_ID, f"`{id[:100]}` is not a valid ID", ["id"])
        type_name, pk = parsed
        if type_name not in _NODE_TYPES:
            return None
        return await _fetched(info, info.context.loaders.of_type(type_name), pk)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Objects by their global IDs, in order; null where there is none."
    )
    async def nodes(self, info: Info_, ids: list[strawberry.ID]) -> list[Node | None]:
        if info.context.viewer is None:
            raise Unauthenticated
        if len(ids) > MAX_PAGE:
            raise DomainError(ErrorCode.INVALID, f"at most {MAX_PAGE} IDs at once", ["ids"])
        parsed = [parse_id(raw) for raw in ids]
        # Every load is awaited here, so none outlives the request (holding a connection).
        found: list[Any] = [
            info.context.loaders.of_type(entry[0]).load(entry[1])
            if entry is not None and entry[0] in _NODE_TYPES
            else None
            for entry in parsed
        ]
        results: list[Any] = [await f if f is not None else None for f in found]
        await prefetch_below(info, [r for r in results if r is not None])
        # A malformed ID is null at its position with an error there (path ["nodes", i]):
        # GraphQL execution raises an exception found in a list where that item's value goes.
        shown: list[Any] = [
            DomainError(
                ErrorCode.INVALID_ID, f"`{raw[:100]}` is not a valid ID", ["ids", str(index)]
            )
            if entry is None
            else result
            for index, (raw, entry, result) in enumerate(zip(ids, parsed, results, strict=True))
        ]
        return shown

    @strawberry.field(description="Projects, newest first.")
    async def projects(
        self,
        info: Info_,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Connection[Project]:
        page = PageRequest.of(first, decode_cursor(after))
        rows = await info.context.services.reads.projects(page)
        connection = Connection.of(
            [Project.from_row(row) for row in rows], page, (info.context.loaders.project_count, 0)
        )
        await prefetch_below(info, connection.nodes, connection=True)
        return connection

    project: Project | None = _by_id("Project", "A project by ID.")
    video: Video | None = _by_id("Video", "A video by ID.")
    context: Context | None = _by_id("Context", "A video's context by ID.")
    frame: Frame | None = _by_id("Frame", "A frame by ID.")
    main_chat: MainChat | None = _by_id("MainChat", "A main chat by ID.")
    image: Image | None = _by_id("Image", "An image by ID.")


_NODE_TYPES = {
    "Project",
    "Video",
    "Context",
    "Frame",
    "MainChat",
    "Message",
    "Image",
    "Generation",
    "Export",
    "DiagnosticsRun",
}
