"""Relay connections: `edges { cursor node }`, `nodes`, `pageInfo` and `totalCount`."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import strawberry
from strawberry.dataloader import DataLoader

from storyframe.domain.pages import Page, PageRequest
from storyframe.schema.building import Derived, built
from storyframe.schema.ids import encode_cursor
from storyframe.schema.relations import peek
from storyframe.schema.request_context import RequestContext


class HasPk(Protocol):
    @property
    def pk(self) -> int: ...


N = TypeVar("N")


@strawberry.type(description="Where a page of a connection sits.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str = Derived(lambda edge: encode_cursor(edge.node.pk), "its node's pk")  # type: ignore[assignment]
    node: N


@strawberry.type
class Connection(Generic[N]):
    """A page of items, newest first. Pass `pageInfo.endCursor` as `after` for the next page."""

    edges: list[Edge[N]]
    nodes: list[N]
    page_info: PageInfo
    counter: strawberry.Private[tuple[DataLoader[Any, int], Hashable] | None]

    @strawberry.field(description="How many items there are in all pages together.")
    def total_count(self, info: strawberry.Info[RequestContext, None]) -> int:
        if self.counter is None:
            return len(self.nodes)
        return peek(*self.counter)  # type: ignore[no-any-return]

    @classmethod
    def of(
        cls,
        items: Sequence[Any],
        request: PageRequest,
        counter: tuple[DataLoader[Any, int], Hashable] | None = None,
    ) -> Connection[Any]:
        page = Page.from_rows(list(items), request)
        nodes = page.items
        return built(  # one connection for each parent of a list: built as the nodes are
            cls,
            edges=[built(Edge, node=node) for node in nodes],
            nodes=nodes,
            page_info=built(
                PageInfo,
                has_next_page=page.has_next,
                has_previous_page=page.has_previous,
                start_cursor=encode_cursor(nodes[0].pk) if nodes else None,
                end_cursor=encode_cursor(nodes[-1].pk) if nodes else None,
            ),
            counter=counter,
        )
