"""Leaf fields read straight from their object, and selections answered whole, without
graphql-core's and Strawberry's machinery for each field.

Most of a large answer is leaves (an image's `url`, a frame's `title`): for each, graphql-core
builds a resolve info, calls Strawberry's resolver (which reads the attribute), then completes
the value (non-null check, the scalar's `serialize`). `fast_leaves` marks every field that is a
plain attribute (of a scalar or enum type: a leaf); `LeafExecutor.execute_field` reads a leaf
and serializes it itself, and a list whose items' selection its `Planner` can compile
(`plans`) is answered as a whole, objects and lists below included. Anything unusual
(arguments, middleware, a missing or unserializable value, null where null is not allowed)
goes the usual way, so the answers and the errors stay exactly graphql-core's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry import Schema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from storyframe.schema.plans import ATTRIBUTE, LEAF, Planner
from storyframe.schema.relations import DEFINITION

_MISSING = object()

PLANNED_LENGTH = 2
"""The shortest list worth planning: a plan is made once per execution, and for one object it
costs about what graphql-core's way (with the leaves read straight) does. A lone object is
never planned for the same reason; the lists below it are."""


def fast_leaves(schema: Schema) -> Schema:
    """Mark the schema's plain fields for `LeafExecutor`; the schema is otherwise the same."""
    mark_leaves(schema._schema)
    return schema


def mark_leaves(schema: GraphQLSchema) -> None:
    for named in schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            definition = field.extensions.get(DEFINITION)
            if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
                continue
            if not getattr(field.resolve, "_is_default", False) or field.args:
                continue
            field.extensions[ATTRIBUTE] = definition.python_name
            non_null = isinstance(field.type, GraphQLNonNull)
            leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
                plain = _PLAIN.get(leaf.serialize) if isinstance(leaf, GraphQLScalarType) else None
                field.extensions[LEAF] = (definition.python_name, leaf.serialize, non_null, plain)


_PLAIN: dict[Any, type[Any]] = {
    GraphQLString.serialize: str,
    GraphQLID.serialize: str,
    GraphQLBoolean.serialize: bool,
}
"""Scalars whose serialization answers a value of this Python type as it is."""


class LeafExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._planner: Planner | None = None

    @property
    def planner(self) -> Planner | None:
        """The execution's planner; None when a middleware wraps resolvers (Strawberry always
        passes a manager, often an empty one): every field then goes through it."""
        if self._planner is None and not self._middlewares:
            self._planner = Planner(
                self.context_value, self.collect_subfields, self.variable_values, self.is_awaitable
            )
        return self._planner

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> Any:
        """A list whose items' selection can be planned (a message's `images { url }`, a
        video's frames and all below them once prefetched) is answered whole; any other goes
        the usual way, item by item."""
        planner = self.planner
        if (
            planner is not None
            and isinstance(items, list)
            and len(items) >= PLANNED_LENGTH
            and self.get_stream_usage(field_details_list, path) is None
            and (item := planner.value(item_type, field_details_list)) is not None
        ):
            try:
                return [item(each) for each in items]
            except Exception:  # the usual way below answers it exactly
                pass
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    @property
    def _middlewares(self) -> bool:
        """Whether a middleware wraps resolvers (Strawberry always passes a manager, often an
        empty one); leaves then go the usual way, through it."""
        manager = self.middleware_manager
        return manager is not None and bool(getattr(manager, "middlewares", True))

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        field = parent_type.fields.get(node.name.value)
        leaf = field.extensions.get(LEAF) if field is not None else None
        if leaf is not None and not node.arguments and not self._middlewares:
            python_name, serialize, non_null, _ = leaf
            value = getattr(source, python_name, _MISSING)
            if value is None and not non_null:
                return None
            if value is not None and value is not _MISSING and not self.is_awaitable(value):
                try:
                    serialized = serialize(value)
                except Exception:  # the usual way says what is wrong, where
                    serialized = None
                if serialized is not None and serialized is not Undefined:
                    return serialized
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
