"""Leaf fields read straight from their object, without graphql-core's and Strawberry's
machinery for each one.

Most of a large answer is leaves (an image's `url`, a frame's `title`): for each, graphql-core
builds a resolve info, calls Strawberry's resolver (which reads the attribute), then completes
the value (non-null check, the scalar's `serialize`). `fast_leaves` marks every field that is a
plain attribute of a scalar or enum type; for those, `LeafExecutor.execute_field` reads the
attribute and serializes it itself, and an object (or a list of objects) whose selection is
made of them only is answered as a whole. Anything unusual (arguments, middleware, a missing
or unserializable value, null where null is not allowed) goes the usual way, so the answers
and the errors stay exactly graphql-core's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry import Schema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from storyframe.schema.relations import DEFINITION

LEAF = "storyframe-leaf"
_MISSING = object()


def fast_leaves(schema: Schema) -> Schema:
    """Mark the schema's plain leaf fields for `LeafExecutor`; the schema is otherwise the same."""
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
            non_null = isinstance(field.type, GraphQLNonNull)
            leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
                field.extensions[LEAF] = (definition.python_name, leaf.serialize, non_null)


Plan = tuple[tuple[str, str, Any, bool], ...]
"""An object's selection made of leaves only: response name, attribute, serialize, non-null."""


class LeafExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[int, tuple[object, Plan | None]] = {}

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """An object whose selection is leaves only (an image's `{ url }`) is answered as a
        dict straight away; any other goes the usual way, field by field."""
        grouped, new_defer_usages, _ = self.collect_subfields(return_type, field_details_list)
        plan = None if new_defer_usages or self._middlewares else self._plan(return_type, grouped)
        if plan is not None and (answer := self._answer(plan, result)) is not None:
            return answer
        return self.execute_collected_subfields(
            return_type, result, path, grouped, new_defer_usages, position_context
        )

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> Any:
        """A list of objects whose selection is leaves only (a message's `images { url }`) is
        answered whole; any other goes the usual way, item by item."""
        non_null = isinstance(item_type, GraphQLNonNull)
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if (
            isinstance(object_type, GraphQLObjectType)
            and isinstance(items, list)
            and not self._middlewares
        ):
            grouped, new_defer_usages, _ = self.collect_subfields(object_type, field_details_list)
            plan = None if new_defer_usages else self._plan(object_type, grouped)
            if plan is not None and self.get_stream_usage(field_details_list, path) is None:
                answers = self._answers(plan, object_type, info, items, non_null)
                if answers is not None:
                    return answers
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _answers(
        self,
        plan: Plan,
        object_type: GraphQLObjectType,
        info: GraphQLResolveInfo[Any],
        items: list[Any],
        non_null: bool,
    ) -> list[Any] | None:
        is_type_of = object_type.is_type_of
        answers: list[Any] = []
        for item in items:
            if item is None:
                if non_null:
                    return None
                answers.append(None)
                continue
            if is_type_of is not None and is_type_of(item, info) is not True:
                return None
            answer = self._answer(plan, item)
            if answer is None:
                return None
            answers.append(answer)
        return answers

    def _answer(self, plan: Plan, source: Any) -> dict[str, Any] | None:
        """The object's leaves, or None when one of them needs the usual way."""
        answer: dict[str, Any] = {}
        for response_name, python_name, serialize, non_null in plan:
            value = getattr(source, python_name, _MISSING)
            if value is None and not non_null:
                answer[response_name] = None
                continue
            if value is None or value is _MISSING or self.is_awaitable(value):
                return None
            try:
                serialized = serialize(value)
            except Exception:  # the usual way says what is wrong, where
                return None
            if serialized is None or serialized is Undefined:
                return None
            answer[response_name] = serialized
        return answer

    def _plan(self, parent_type: GraphQLObjectType, grouped: Any) -> Plan | None:
        """The selection as leaves to read, or None when it has anything else; worked out
        once per selection of the operation (graphql-core keeps each selection for the
        whole execution, so its identity stands for it)."""
        known = self._plans.get(id(grouped))
        if known is not None and known[0] is grouped:
            return known[1]
        plan: list[tuple[str, str, Any, bool]] | None = []
        for response_name, field_details_list in grouped.items():
            node = field_details_list[0].node
            field = parent_type.fields.get(node.name.value)
            leaf = field.extensions.get(LEAF) if field is not None else None
            if leaf is None or node.arguments or plan is None:
                plan = None
                break
            plan.append((response_name, *leaf))
        found = tuple(plan) if plan else None
        self._plans[id(grouped)] = (grouped, found)
        return found

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
            python_name, serialize, non_null = leaf
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
