"""Relations between types, resolved through DataLoaders and prefetched a whole level at a time.

A list field's resolver looks at what the query selects below it and loads each selected relation
for all the items at once, recursively. The fields below then find their data already in the
DataLoader caches and resolve synchronously: an async resolver per item costs more than the
whole SQL of a level (see DESIGN.md). A field reached any other way still works through the
same DataLoaders, just without the head start.

A field is declared with its relation (`nodes.related` and `nodes.paged`), which its Strawberry
field keeps in its metadata; the prefetch finds it there through the schema, by type and field.

`resolve_relations_directly` lets graphql-core call those fields without Strawberry's resolver
wrapper, which costs more than the relation itself (see bench/README.md).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    get_named_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FieldDetailsList,
    FragmentDetails,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry import Schema
from strawberry.dataloader import DataLoader
from strawberry.schema.schema_converter import GraphQLCoreConverter

from storyframe.domain.errors import DomainError
from storyframe.schema.request_context import Loaders

Args = Mapping[str, Any]
Target = tuple[DataLoader[Any, Any], Hashable]
Targeter = Callable[[Loaders, Any, Args], Target | None]


@dataclass(frozen=True, slots=True)
class Relation:
    """How a field of a type reaches its data: which loader, which key."""

    target: Targeter
    connection: bool = False
    count: Targeter | None = None

    def resolve(self, loaders: Loaders, parent: Any, args: Args) -> Any:
        target = self.target(loaders, parent, args)
        return None if target is None else peek(*target)


RELATION = "storyframe.relation"
"""The key of a field's `Relation` in its Strawberry field's metadata (see `nodes`)."""
DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF
"""Where graphql-core's field keeps the Strawberry field it was made from."""
DIRECT = "storyframe.direct"
"""Where a field resolved directly keeps its `Relation`, for the executor's plans (`plans`)."""


def relation_of(field: GraphQLField) -> Relation | None:
    """The relation a field of the schema is declared with, if any."""
    definition = (field.extensions or {}).get(DEFINITION)
    metadata = getattr(definition, "metadata", None) or {}
    found: Relation | None = metadata.get(RELATION)
    return found


def resolve_relations_directly(schema: Schema) -> Schema:
    """Have graphql-core call every relation field of an object type straight, not through
    Strawberry's resolver wrapper (an `Info` object, argument conversion, the field-extension
    chain: about 2 µs a field, on hundreds of fields per list). Each such field's Strawberry
    resolver does nothing but `relation.resolve(info.context.loaders, self, args)` with the
    arguments under their GraphQL names, which is what graphql-core passes; a field with field
    extensions keeps its Strawberry resolver. The schema and every result stay the same."""
    for runtime in schema._schema.type_map.values():
        if not isinstance(runtime, GraphQLObjectType):
            continue
        for field in runtime.fields.values():
            rel = relation_of(field)
            if rel is not None and not field.extensions[DEFINITION].extensions:
                field.resolve = _direct(rel)
                field.extensions[DIRECT] = rel
    return schema


def _direct(rel: Relation) -> Callable[..., Any]:
    def resolve(parent: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        return rel.resolve(info.context.loaders, parent, args)

    return resolve


def peek(loader: DataLoader[Any, Any], key: Hashable) -> Any:
    """The loaded value when the loader already has it, otherwise an awaitable of it."""
    future = loader.load(key)
    assert isinstance(future, asyncio.Future)
    return future.result() if future.done() else future


@dataclass(frozen=True, slots=True)
class Walk:
    """What collecting selected fields needs from the operation being executed."""

    schema: GraphQLSchema
    fragments: dict[str, FragmentDetails]
    variables: VariableValues
    operation: OperationDefinitionNode

    @classmethod
    def of(cls, info: GraphQLResolveInfo[Any]) -> Walk:
        fragments = {name: FragmentDetails(node) for name, node in info.fragments.items()}
        variables: Any = info.variable_values
        if not isinstance(variables, VariableValues):
            # Strawberry hands resolvers the plain dict of coerced values.
            variables = VariableValues({}, dict(variables))
        return cls(info.schema, fragments, variables, info.operation)

    def fields(self, type_name: str, details: FieldDetailsList) -> dict[str, FieldDetailsList]:
        runtime = self.schema.get_type(type_name)
        if not isinstance(runtime, GraphQLObjectType):
            return {}
        return collect_subfields(
            self.schema, self.fragments, self.variables, self.operation, runtime, details
        ).grouped_field_set


async def prefetch_below(info: Any, parents: Sequence[Any], *, connection: bool = False) -> None:
    """Prefetch what the field being resolved selects below `parents` (or below its nodes)."""
    raw: GraphQLResolveInfo[Any] = info._raw_info
    walk = Walk.of(raw)
    details = [FieldDetails(node, None) for node in raw.field_nodes]
    if connection:
        details = _below_connection(walk, raw.return_type, details)
    await _prefetch(walk, info.context.loaders, parents, details)


async def _prefetch(
    walk: Walk, loaders: Loaders, parents: Sequence[Any], details: FieldDetailsList
) -> None:
    if not parents or not details:
        return
    by_type: dict[str, list[Any]] = defaultdict(list)
    for parent in parents:
        by_type[type(parent).__name__].append(parent)
    loads = []
    for type_name, items in by_type.items():
        runtime = walk.schema.get_type(type_name)
        assert isinstance(runtime, GraphQLObjectType)
        for field_details in walk.fields(type_name, details).values():
            field = runtime.fields.get(field_details[0].node.name.value)
            if field is not None and (rel := relation_of(field)) is not None:
                loads.append(_load(walk, loaders, rel, items, field, field_details))
    await asyncio.gather(*loads)


async def _load(
    walk: Walk,
    loaders: Loaders,
    rel: Relation,
    parents: list[Any],
    field: GraphQLField,
    details: FieldDetailsList,
) -> None:
    try:
        args = get_argument_values(field, details[0].node, walk.variables)
        targets = [t for p in parents if (t := rel.target(loaders, p, args))]
        wants_count = rel.count is not None and "totalCount" in _names(walk, field.type, details)
        counts = [t for p in parents if rel.count and (t := rel.count(loaders, p, args))]
    except (DomainError, GraphQLError):
        return  # the field's own resolver reports the bad argument
    results: list[Any]
    results, _ = await asyncio.gather(_load_all(targets), _load_all(counts if wants_count else []))
    children: list[Any] = []
    for result in results:
        children.extend(_nodes(result))
    if rel.connection:
        details = _below_connection(walk, field.type, details)
    await _prefetch(walk, loaders, children, details)


async def _load_all(targets: list[Target]) -> list[Any]:
    """The targets' values. Every load is queued before the first await, so each loader answers
    its keys in one batch; awaiting the futures one by one then suspends about once per batch,
    where `gather` would wrap them all and hang a callback on every one of them."""
    futures = [cast("asyncio.Future[Any]", loader.load(key)) for loader, key in targets]
    try:
        return [await future for future in futures]
    except BaseException:
        for future in futures:
            if future.done() and not future.cancelled():
                future.exception()  # retrieved, as `gather` does, so asyncio does not log it
        raise


def _nodes(result: Any) -> list[Any]:
    if result is None or isinstance(result, (int, str)):
        return []
    if isinstance(result, list):
        return result
    nodes = getattr(result, "nodes", None)
    return list(nodes) if isinstance(nodes, list) else [result]


def _names(walk: Walk, output: GraphQLOutputType, details: FieldDetailsList) -> set[str]:
    named = get_named_type(output)
    if not isinstance(named, GraphQLObjectType):
        return set()
    return {d[0].node.name.value for d in walk.fields(named.name, details).values()}


def _below_connection(
    walk: Walk, output: GraphQLOutputType, details: FieldDetailsList
) -> FieldDetailsList:
    """What a connection's selection asks of its nodes: `edges { node { … } }` and `nodes { … }`."""
    connection = get_named_type(output)
    if not isinstance(connection, GraphQLObjectType):
        return []
    below: FieldDetailsList = []
    for group in walk.fields(connection.name, details).values():
        name = group[0].node.name.value
        if name == "nodes":
            below.extend(group)
        elif name == "edges":
            edge = get_named_type(connection.fields["edges"].type)
            assert isinstance(edge, GraphQLObjectType)
            for edge_group in walk.fields(edge.name, group).values():
                if edge_group[0].node.name.value == "node":
                    below.extend(edge_group)
    return below
