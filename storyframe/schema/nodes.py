"""What the object types share: the `Node` interface, reading a row's columns, and the fields
that reach their data through a relation, each declared with its relation in one step."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from operator import attrgetter, itemgetter
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row

from storyframe.domain.pages import PageRequest
from storyframe.schema.ids import decode_cursor
from storyframe.schema.relations import RELATION, Args, Relation, Targeter
from storyframe.schema.request_context import Info_

FIRST = strawberry.argument(description="How many items to return: 0 to 100, 20 when omitted.")
AFTER = strawberry.argument(description="The `endCursor` of the previous page.")


@strawberry.interface(description="An object with a global ID; `node(id:)` fetches it again.")
class Node:
    id: strawberry.ID


class Columns:
    """Reads columns from a plain row (what the reader answers) by name, and from an ORM entity
    (what a mutation answers) straight from its instance dict, where SQLAlchemy keeps the loaded
    values (`InstanceState.dict`): going through the ORM's attribute descriptors costs more than
    building the object. An entity missing a value (expired, deferred) is read through them."""

    def __init__(self, *names: str) -> None:
        self._items = itemgetter(*names)
        self._attributes = attrgetter(*names)

    def of(self, row: object) -> Any:
        if isinstance(row, Row):  # by name through its mapping: a third of its attributes' cost
            return self._items(row._mapping)
        try:
            return self._items(vars(row))
        except KeyError:
            return self._attributes(row)


def page(
    first: Annotated[int | None, FIRST] = None, after: Annotated[str | None, AFTER] = None
) -> Args:
    """The arguments of a connection, under their GraphQL names."""
    return {"first": first, "after": after}


def page_of(args: Args) -> PageRequest:
    return PageRequest.of(args.get("first"), decode_cursor(args.get("after")))


def related(target: Targeter, *, description: str | None = None) -> Any:
    """A field whose value `target` names: a DataLoader and the key to load (or None, for null).
    Its type is the annotation it is assigned to; its type and field names come from the schema.
    A list's resolver prefetches it for all the list's items at once (`relations`)."""
    return _field(Relation(target), _no_arguments, description)


def paged(
    target: Targeter,
    count: Targeter,
    *,
    description: str | None = None,
    arguments: Callable[..., Args] = page,
) -> Any:
    """A connection field: `target` names the page, `count` the `totalCount`. The parameters of
    `arguments` are the field's arguments; it returns them under their GraphQL names, as
    graphql-core passes them to a relation resolved directly."""
    return _field(Relation(target, connection=True, count=count), arguments, description)


def _no_arguments() -> Args:
    return {}


_ROOT = inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Any)
_INFO = inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Info_)


def _field(rel: Relation, arguments: Callable[..., Args], description: str | None) -> Any:
    def resolve(root: Any, info: Info_, **kwargs: Any) -> Any:
        return rel.resolve(info.context.loaders, root, arguments(**kwargs))

    # Strawberry reads a resolver's arguments from its signature: root, info, and those declared.
    declared = inspect.signature(arguments, eval_str=True).parameters.values()
    resolve.__signature__ = inspect.Signature([_ROOT, _INFO, *declared])  # type: ignore[attr-defined]
    return strawberry.field(resolver=resolve, description=description, metadata={RELATION: rel})
