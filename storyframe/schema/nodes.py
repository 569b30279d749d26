"""What the object types share: the `Node` interface, reading a row's columns, and the fields
that reach their data through a relation, each declared with its relation in one step."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from operator import attrgetter, itemgetter
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row
from strawberry import Private

from storyframe.domain.pages import PageRequest
from storyframe.schema.building import Derived
from storyframe.schema.ids import decode_cursor, encode_id
from storyframe.schema.relations import RELATION, Args, Relation, Targeter
from storyframe.schema.request_context import Info_

FIRST = strawberry.argument(description="How many items to return: 0 to 100, 20 when omitted.")
AFTER = strawberry.argument(description="The `endCursor` of the previous page.")


_TYPE_NAMES: dict[type[Any], str] = {}


def type_name(cls: type[Any]) -> str:
    """The GraphQL name of a Strawberry type."""
    name = _TYPE_NAMES.get(cls)
    if name is None:
        name = _TYPE_NAMES[cls] = cls.__strawberry_definition__.name
    return name


@strawberry.interface(description="An object with a global ID; `node(id:)` fetches it again.")
class Node:
    pk: Private[int]
    id: strawberry.ID = Derived(  # type: ignore[assignment]
        lambda node: strawberry.ID(encode_id(type_name(type(node)), node.pk)),
        "its type's name and its pk",
    )


class Columns:
    """Reads columns from a plain row (what the reader answers) by position, and from an ORM
    entity (what a mutation answers) straight from its instance dict, where SQLAlchemy keeps the
    loaded values (`InstanceState.dict`): going through the ORM's attribute descriptors costs
    more than building the object. An entity missing a value (expired, deferred) is read
    through them.
    """

    def __init__(self, *names: str) -> None:
        self._names = names
        self._items = itemgetter(*names)
        self._by_name = attrgetter(*names)
        self._positions: dict[object, itemgetter[Any]] = {}

    def of(self, row: object) -> Any:
        """The columns' values, in order (the one value when there is one column)."""
        if isinstance(row, Row):
            # By position, found once for each result's columns (which SQLAlchemy keeps with
            # the statement): by name through the row's mapping costs twice as much.
            by_position = self._positions.get(row._parent)
            if by_position is None:
                by_position = self._positioned(row)
            return by_position(row)
        try:
            return self._items(vars(row))
        except KeyError:
            return self._by_name(row)

    def _positioned(self, row: Row[Any]) -> itemgetter[Any]:
        if len(self._positions) >= _POSITIONS_KEPT:
            self._positions.clear()
        fields = row._fields
        by_position = itemgetter(*(fields.index(name) for name in self._names))
        self._positions[row._parent] = by_position
        return by_position


_POSITIONS_KEPT = 64
"""Result shapes a `Columns` remembers (a handful in practice: one per statement)."""


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
