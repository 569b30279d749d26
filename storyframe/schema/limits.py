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
    GraphQLSchema,
    InlineFragmentNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    specified_rules,
)
from graphql.language.parser import parse as parse
from graphql.validation.validate import validate as validate
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from storyframe.schema.cost import CostWalk, ListBound, field_of, unbounded_lists
from storyframe.schema.errors import with_code


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
    costs: dict[str | None, int] = field(default_factory=dict)
    """The cost of each operation that declares no variables, which is the same every time."""


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

    def unbounded_lists(self) -> list[str]:
        """The schema's output list fields that have no bound: each must have one."""
        return unbounded_lists(self.schema, self.list_bounds)

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
        try:
            document = parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLError as error:
            if "more than" in error.message and "tokens" in error.message:
                return _Prepared(None, [_tokens_refused(self.limits.max_tokens)])
            return _Prepared(None, [with_code(error, "GRAPHQL_PARSE_FAILED")])
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
                    definition = field_of(self.schema, type_name, name)
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

    # --- per request: the cost depends on the variables ----------------------------------------

    def cost(
        self,
        prepared: _Prepared,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> int:
        """How many fields the operation may resolve at most (see `storyframe.schema.cost`)."""
        cached = prepared.costs.get(operation_name)
        if cached is not None:
            return cached
        assert prepared.document is not None
        operation = _operation(prepared.document, operation_name)
        root = None if operation is None else self.schema.get_root_type(operation.operation)
        if operation is None or root is None:
            return 0
        walk = CostWalk(self.schema, self.list_bounds, prepared.fragments, variables or {})
        cost = walk.cost(operation.selection_set, root.name).fixed
        if not operation.variable_definitions:
            prepared.costs[operation_name] = cost
        return cost

    def cost_errors(self, cost: int) -> list[GraphQLError]:
        """The refusal of an operation that may resolve `cost` fields, if it is over the limit."""
        if cost <= self.limits.max_cost:
            return []
        return [
            refused(
                f"the query may resolve up to {cost} fields; the limit is "
                f"{self.limits.max_cost}: ask for smaller pages (`first`) or fewer nested lists",
                "MAX_COST_EXCEEDED",
                cost=cost,
                limit=self.limits.max_cost,
            )
        ]


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
            checks = self._checks(context.schema._schema)
            context.pre_execution_errors = prepared.errors or checks.cost_errors(
                checks.cost(prepared, context.operation_name, context.variables)
            )
        yield
