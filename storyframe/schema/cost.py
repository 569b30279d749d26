"""What a query may cost: the most fields it can resolve, counted before it runs.

Every field counts once per object it is asked of. A connection multiplies what is below its
`edges` and `nodes` by the page its field asks for (`first`); a plain list multiplies what is
below it by its longest length, a bound the domain enforces where the list grows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_interface_type,
    is_list_type,
    is_object_type,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef

from storyframe.domain.pages import DEFAULT_PAGE, MAX_PAGE

CONNECTION_LISTS = frozenset({"edges", "nodes"})
"""A connection's lists, each as long as the page its parent field asked for."""

ListBound = int | Callable[[Mapping[str, Any]], int]
"""A list field's longest length: a number, or one computed from the field's arguments."""

_META_FIELDS = {
    "__schema": SchemaMetaFieldDef,
    "__type": TypeMetaFieldDef,
    "__typename": TypeNameMetaFieldDef,
}


def field_of(schema: GraphQLSchema, type_name: str, name: str) -> GraphQLField | None:
    """The definition of a type's field, introspection's included; None if it has none."""
    if name in _META_FIELDS:
        return _META_FIELDS[name]
    fields = getattr(schema.get_type(type_name), "fields", None)
    return fields.get(name) if fields else None


def unbounded_lists(
    schema: GraphQLSchema, list_bounds: Mapping[tuple[str, str], ListBound]
) -> list[str]:
    """The schema's output list fields with no bound (a connection's lists have their page)."""
    missing = []
    for type_name, graphql_type in schema.type_map.items():
        if type_name.startswith("__") or not (
            is_object_type(graphql_type) or is_interface_type(graphql_type)
        ):
            continue
        for name, definition in graphql_type.fields.items():
            if not is_list_type(get_nullable_type(definition.type)):
                continue
            if name in CONNECTION_LISTS and type_name.endswith("Connection"):
                continue
            if (type_name, name) not in list_bounds and ("*", name) not in list_bounds:
                missing.append(f"{type_name}.{name}")
    return missing


@dataclass(slots=True)
class _Cost:
    """A selection set's cost: `fixed`, plus `per_item` for each item of its connection's
    page (the fields below `edges` and `nodes`)."""

    fixed: int = 0
    per_item: int = 0


class CostWalk:
    """The cost of one operation's selections, with the request's variables; each fragment is
    costed once, however often it is spread."""

    def __init__(
        self,
        schema: GraphQLSchema,
        list_bounds: Mapping[tuple[str, str], ListBound],
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.list_bounds = list_bounds
        self.fragments = fragments
        self.variables = variables
        self.memo: dict[str, _Cost] = {}

    def fragment(self, name: str) -> _Cost:
        if name not in self.memo:
            definition = self.fragments[name]
            self.memo[name] = self.cost(
                definition.selection_set, definition.type_condition.name.value
            )
        return self.memo[name]

    def cost(self, selection_set: SelectionSetNode, type_name: str) -> _Cost:
        total = _Cost()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                cost = self.field(selection, type_name)
                if selection.name.value in CONNECTION_LISTS and type_name.endswith("Connection"):
                    total.per_item += cost
                else:
                    total.fixed += cost
                continue
            if isinstance(selection, FragmentSpreadNode):
                part = self.fragment(selection.name.value)
            else:
                assert isinstance(selection, InlineFragmentNode)
                condition = selection.type_condition
                part = self.cost(
                    selection.selection_set, condition.name.value if condition else type_name
                )
            total.fixed += part.fixed
            total.per_item += part.per_item
        return total

    def field(self, node: FieldNode, parent: str) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 1
        definition = field_of(self.schema, parent, name)
        if definition is None:
            return 1
        inner = _Cost()
        if node.selection_set is not None:
            inner = self.cost(node.selection_set, get_named_type(definition.type).name)
        arguments = {arg.name.value: self.value(arg.value) for arg in node.arguments or ()}
        below = inner.fixed + inner.per_item * _page(arguments)
        if name in CONNECTION_LISTS and parent.endswith("Connection"):
            return 1 + below  # the page's length is counted by the connection's field
        if is_list_type(get_nullable_type(definition.type)):
            return self.bound(parent, name, arguments) * (1 + below)
        return 1 + below

    def bound(self, parent: str, name: str, arguments: Mapping[str, Any]) -> int:
        bounds = self.list_bounds
        rule = bounds.get((parent, name), bounds.get(("*", name)))
        if rule is None:
            return MAX_PAGE
        return rule if isinstance(rule, int) else rule(arguments)

    def value(self, node: ValueNode) -> Any:
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value)
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, ListValueNode):
            return [self.value(item) for item in node.values]
        return None


def _page(arguments: Mapping[str, Any]) -> int:
    first = arguments.get("first")
    if not isinstance(first, int) or isinstance(first, bool):
        return DEFAULT_PAGE
    return min(max(first, 0), MAX_PAGE)


def length_of(argument: str, most: int) -> Callable[[Mapping[str, Any]], int]:
    """A list as long as one of its field's list arguments (`nodes(ids:)`), at most `most`."""

    def bound(arguments: Mapping[str, Any]) -> int:
        value = arguments.get(argument)
        return min(len(value), most) if isinstance(value, list) else most

    return bound
