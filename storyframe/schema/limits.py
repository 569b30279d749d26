"""What a document must pass before it runs: tokens, validity, depth, aliases and cost.

Every check here is linear in the size of the document: a fragment is summarised once, and
each spread of it reuses that summary, so a small document that spreads fragments into each
other many times costs no more to check than to read. The checks are built once per schema
and the document-only ones are cached by the document's text, so identical documents are
parsed and validated once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    specified_rules,
)
from graphql.language.ast import IntValueNode
from graphql.language.parser import parse as parse
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from graphql.validation.validate import validate as validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from storyframe.schema.errors import with_code
from storyframe.services.pages import DEFAULT_PAGE, MAX_PAGE

CONNECTION_LISTS = frozenset({"edges", "nodes"})
"""A connection's lists, each as long as the page its parent field asked for."""

ListBound = int | Callable[[Mapping[str, Any]], int]
"""A list field's longest length: a number, or one computed from the field's arguments."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_tokens: int
    max_depth: int
    max_aliases: int
    max_cost: int
    introspection: bool = True
    cache_size: int = 256


def refused(message: str, code: str, **extensions: object) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


@dataclass(slots=True)
class _Shape:
    """What the document-only checks found for one selection set (or fragment)."""

    depth: int = 0
    aliases: int = 0


@dataclass(slots=True)
class _Prepared:
    """A parsed document and what its checks found, cached by the document's text."""

    document: DocumentNode | None
    errors: list[GraphQLError]
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)


class DocumentChecks:
    """The checks of one schema, with the caches they share across requests."""

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: Limits,
        list_bounds: Mapping[tuple[str, str], ListBound],
    ) -> None:
        self.schema = schema
        self.limits = limits
        self.list_bounds = dict(list_bounds)
        self.rules = (
            *specified_rules,
            MaybeNullValidationRule,
            OneOfInputValidationRule,
            *(() if limits.introspection else (NoSchemaIntrospectionCustomRule,)),
        )
        self._prepared: OrderedDict[str, _Prepared] = OrderedDict()
        self.parses = 0
        self.validations = 0

    def unbounded_lists(self) -> list[str]:
        """The schema's output list fields that have no bound: each must have one."""
        missing = []
        for type_name, graphql_type in self.schema.type_map.items():
            fields = getattr(graphql_type, "fields", None)
            if type_name.startswith("__") or not fields or not hasattr(graphql_type, "interfaces"):
                continue
            for name, definition in fields.items():
                if not is_list_type(get_nullable_type(definition.type)):
                    continue
                if name in CONNECTION_LISTS and type_name.endswith("Connection"):
                    continue
                if (type_name, name) not in self.list_bounds and (
                    "*",
                    name,
                ) not in self.list_bounds:
                    missing.append(f"{type_name}.{name}")
        return missing

    # --- per document text, cached -----------------------------------------------------------

    def prepare(self, query: str) -> _Prepared:
        prepared = self._prepared.get(query)
        if prepared is not None:
            self._prepared.move_to_end(query)
            return prepared
        prepared = self._prepare(query)
        self._prepared[query] = prepared
        if len(self._prepared) > self.limits.cache_size:
            self._prepared.popitem(last=False)
        return prepared

    def _prepare(self, query: str) -> _Prepared:
        self.parses += 1
        try:
            document = parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLError as error:
            if "more than" in error.message and "tokens" in error.message:
                return _Prepared(None, [_tokens_refused(self.limits.max_tokens)])
            return _Prepared(None, [with_code(error, "GRAPHQL_PARSE_FAILED")])
        self.validations += 1
        errors = validate(self.schema, document, self.rules)
        if errors:
            return _Prepared(document, [_validation_error(error) for error in errors])
        fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        return _Prepared(document, self._shape_errors(document, fragments), fragments)

    def _shape_errors(
        self, document: DocumentNode, fragments: dict[str, FragmentDefinitionNode]
    ) -> list[GraphQLError]:
        shapes: dict[str, _Shape] = {}

        def fragment_shape(name: str) -> _Shape:
            # Valid documents have no fragment cycles, so each fragment is walked once.
            if name not in shapes:
                definition = fragments[name]
                shapes[name] = selection_shape(
                    definition.selection_set, definition.type_condition.name.value
                )
            return shapes[name]

        def selection_shape(selection_set: SelectionSetNode, type_name: str) -> _Shape:
            shape = _Shape()
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    name = selection.name.value
                    definition = self._field(type_name, name)
                    inner = _Shape()
                    if selection.selection_set is not None and definition is not None:
                        inner = selection_shape(
                            selection.selection_set, get_named_type(definition.type).name
                        )
                    shape.aliases += inner.aliases + (selection.alias is not None)
                    # Introspection answers come from the schema, not the database; graphql-core
                    # bounds how deeply its lists may nest.
                    if not name.startswith("__"):
                        shape.depth = max(shape.depth, 1 + inner.depth)
                    continue
                if isinstance(selection, FragmentSpreadNode):
                    part = fragment_shape(selection.name.value)
                else:
                    assert isinstance(selection, InlineFragmentNode)
                    condition = selection.type_condition
                    part = selection_shape(
                        selection.selection_set, condition.name.value if condition else type_name
                    )
                shape.aliases += part.aliases
                shape.depth = max(shape.depth, part.depth)
            return shape

        errors: list[GraphQLError] = []
        aliases = 0
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            root = self.schema.get_root_type(definition.operation)
            if root is None:
                continue
            shape = selection_shape(definition.selection_set, root.name)
            aliases += shape.aliases
            name = definition.name.value if definition.name else "anonymous"
            depth = shape.depth - 1
            if depth > self.limits.max_depth:
                errors.append(
                    refused(
                        f"operation `{name}` is {depth} fields deep; the limit is "
                        f"{self.limits.max_depth}",
                        "MAX_DEPTH_EXCEEDED",
                        depth=depth,
                        limit=self.limits.max_depth,
                    )
                )
        if aliases > self.limits.max_aliases:
            errors.append(
                refused(
                    f"the document has {aliases} aliases; the limit is {self.limits.max_aliases}",
                    "MAX_ALIASES_EXCEEDED",
                    aliases=aliases,
                    limit=self.limits.max_aliases,
                )
            )
        return errors

    def _field(self, type_name: str, name: str) -> GraphQLField | None:
        if name == "__schema":
            return SchemaMetaFieldDef
        if name == "__type":
            return TypeMetaFieldDef
        if name == "__typename":
            return TypeNameMetaFieldDef
        fields = getattr(self.schema.get_type(type_name), "fields", None)
        return fields.get(name) if fields else None

    # --- per request: the cost depends on the variables ----------------------------------------

    def cost(
        self,
        prepared: _Prepared,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> int:
        """How many fields the operation may resolve at most: each field counts once per
        object it is asked of, and a list multiplies what is below it by its longest length."""
        assert prepared.document is not None
        operation = _operation(prepared.document, operation_name)
        if operation is None:
            return 0
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        return (
            _CostWalk(self, prepared.fragments, variables or {})
            .cost(operation.selection_set, root.name)
            .fixed
        )


@dataclass(slots=True)
class _Cost:
    """A selection set's cost: `fixed`, plus `per_item` for each item of its connection's
    page (the fields below `edges` and `nodes`)."""

    fixed: int = 0
    per_item: int = 0


class _CostWalk:
    def __init__(
        self,
        checks: DocumentChecks,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.checks = checks
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
        definition = self.checks._field(parent, name)
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
        bounds = self.checks.list_bounds
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


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _tokens_refused(limit: int) -> GraphQLError:
    return refused(f"the document has more than {limit} tokens", "MAX_TOKENS_EXCEEDED", limit=limit)


def _validation_error(error: GraphQLError) -> GraphQLError:
    if error.message.startswith("GraphQL introspection has been disabled"):
        return with_code(error, "INTROSPECTION_DISABLED")
    return with_code(error, "GRAPHQL_VALIDATION_FAILED")


class CheckDocuments(SchemaExtension):
    """Runs a request's document through the schema's `DocumentChecks`, in order of cost:
    tokens while parsing, then validation, depth and aliases (cached with the parse), then
    the cost, which depends on the variables."""

    def __init__(self, *, checks: Callable[[GraphQLSchema], DocumentChecks]) -> None:
        self._checks = checks
        self._prepared: _Prepared | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            checks = self._checks(context.schema._schema)
            self._prepared = checks.prepare(context.query)
            if self._prepared.document is None:
                raise self._prepared.errors[0]
            context.graphql_document = self._prepared.document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        prepared = self._prepared
        if prepared is not None:
            errors = list(prepared.errors)
            if not errors:
                checks = self._checks(context.schema._schema)
                cost = checks.cost(prepared, context.operation_name, context.variables)
                if cost > checks.limits.max_cost:
                    errors.append(
                        refused(
                            f"the query may resolve up to {cost} fields; the limit is "
                            f"{checks.limits.max_cost}: ask for smaller pages (`first`) or "
                            "fewer nested lists",
                            "MAX_COST_EXCEEDED",
                            cost=cost,
                            limit=checks.limits.max_cost,
                        )
                    )
            context.pre_execution_errors = errors
        yield
