"""Parts of a query answered whole: a selection whose data is already at hand is read and
serialized by functions compiled once per execution, without graphql-core's machinery per
field (a resolve info, a resolver call, a completion, a path) for each object and leaf.

Relations are prefetched a level at a time (`relations`), so below a list's resolver the whole
selection is usually loaded before graphql-core completes it. A `Planner` compiles such a
selection into one function per object type and field: a plain leaf reads its attribute and
serializes it; a relation resolved directly asks its DataLoader, which answers at once when the
value is loaded; an object or a list recurses. Anything else (a field with a resolver of its
own, an abstract type, `@defer`/`@stream`, a middleware) leaves the selection unplanned, and
graphql-core answers it field by field as usual, planning again below where it can.

A plan never reports an error: whatever it does not expect (a value still loading, a null where
null is not allowed, an error loading, a value its scalar refuses) raises inside it, and the
caller answers the same list the usual way, so the answers and errors stay exactly
graphql-core's. Reads are idempotent (an attribute, a DataLoader's cache), so starting over
repeats nothing that matters.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.values import get_argument_values
from graphql.language import FieldNode

from storyframe.schema.relations import DIRECT, Relation

LEAF = "storyframe-leaf"
"""Where `mark_leaves` keeps a plain leaf field's (attribute, serialize, non-null)."""
ATTRIBUTE = "storyframe-attribute"
"""Where `mark_leaves` keeps the attribute a plain field of any type reads."""

Answer = Callable[[Any], Any]
"""Completes one value of a type: the JSON-ready answer, or an exception for the usual way."""

_CAST = "__as_strawberry_type__"  # where `strawberry.cast` marks an object
_INCLUDED = frozenset({"include", "skip"})  # already applied when the fields were collected


class Unplanned(Exception):
    """The value at hand needs graphql-core's usual way."""


class Planner:
    """Compiles the selections of one execution. Plans are kept by the identity of the field
    lists graphql-core collected, which it keeps for the whole execution."""

    def __init__(
        self,
        context: Any,
        collect_subfields: Callable[[GraphQLObjectType, FieldDetailsList], Any],
        variable_values: Any,
        is_awaitable: Callable[[Any], bool],
    ) -> None:
        self._context = context
        self._collect = collect_subfields
        self._variables = variable_values
        self._is_awaitable = is_awaitable
        self._objects: dict[int, tuple[object, Answer | None]] = {}
        self._values: dict[tuple[int, int], tuple[object, Answer | None]] = {}

    def object(self, object_type: GraphQLObjectType, grouped: GroupedFieldSet) -> Answer | None:
        """The answer to an object of the type (not null) with its collected selection, or
        None when it cannot be planned."""
        known = self._objects.get(id(grouped))
        if known is not None and known[0] is grouped:
            return known[1]
        answer = self._compile_object(object_type, grouped)
        self._objects[id(grouped)] = (grouped, answer)
        return answer

    def value(self, output: GraphQLOutputType, details: FieldDetailsList) -> Answer | None:
        """The answer to any value of `output` (null included) selected by `details`, or None."""
        key = (id(output), id(details))
        known = self._values.get(key)
        if known is not None and known[0] is details:
            return known[1]
        answer = self._compile_value(output, details)
        self._values[key] = (details, answer)
        return answer

    def _compile_object(
        self, object_type: GraphQLObjectType, grouped: GroupedFieldSet
    ) -> Answer | None:
        steps: list[tuple[str, Answer]] = []
        for response_name, details in grouped.items():
            if any(d.defer_usage is not None or _directed(d.node) for d in details):
                return None
            node = details[0].node
            if node.name.value == "__typename":
                steps.append((response_name, _constant(object_type.name)))
                continue
            field = object_type.fields.get(node.name.value)
            step = None if field is None else self._field(field, node, details)
            if step is None:
                return None
            steps.append((response_name, step))
        if not steps:
            return None
        fields = tuple(steps)
        is_type_of: Any = object_type.is_type_of
        is_awaitable = self._is_awaitable
        checked: set[type[Any]] = set()

        def check(source: Any) -> None:
            if (
                source is None
                or is_awaitable(source)
                or (is_type_of is not None and is_type_of(source, None) is not True)
            ):
                raise Unplanned
            if getattr(source, _CAST, None) is None:
                checked.add(type(source))

        def answer(source: Any) -> dict[str, Any]:
            # An object of a class checked here before is of the type, as Strawberry's
            # `is_type_of` (an isinstance check that does not read its info) found then, unless
            # `strawberry.cast` made it another.
            if type(source) not in checked or getattr(source, _CAST, None) is not None:
                check(source)
            result = {}
            for name, step in fields:
                result[name] = step(source)
            return result

        return answer

    def _field(
        self, field: GraphQLField, node: FieldNode, details: FieldDetailsList
    ) -> Answer | None:
        """Reads the field from its parent and completes its value."""
        leaf = field.extensions.get(LEAF)
        if leaf is not None and not node.arguments:
            return self._leaf(*leaf)
        complete = self.value(field.type, details)
        if complete is None:
            return None
        attribute = field.extensions.get(ATTRIBUTE)
        if attribute is not None and not node.arguments:
            read = attrgetter(attribute)
            return lambda source: complete(read(source))
        relation: Relation | None = field.extensions.get(DIRECT)
        return None if relation is None else self._related(relation, field, node, complete)

    def _related(
        self, relation: Relation, field: GraphQLField, node: FieldNode, complete: Answer
    ) -> Answer | None:
        """A relation's value when its DataLoader has it, completed."""
        try:
            args = get_argument_values(field, node, self._variables)
        except Exception:  # the usual way reports it, where it belongs
            return None
        loaders = self._context.loaders
        target = relation.target

        def related(source: Any) -> Any:
            found = target(loaders, source, args)
            if found is None:
                return complete(None)
            future: Any = found[0].load(found[1])
            if not future.done():
                raise Unplanned
            return complete(future.result())

        return related

    def _leaf(
        self,
        attribute: str,
        serialize: Callable[[Any], Any],
        non_null: bool,
        plain: type[Any] | None,
    ) -> Answer:
        read = attrgetter(attribute)
        complete = self._scalar(serialize, non_null)

        def leaf(source: Any) -> Any:
            value = read(source)
            if type(value) is plain:  # a str for a String, say: its own serialization
                return value
            return complete(value)

        return leaf

    def _compile_value(self, output: GraphQLOutputType, details: FieldDetailsList) -> Answer | None:
        non_null = isinstance(output, GraphQLNonNull)
        inner = output.of_type if isinstance(output, GraphQLNonNull) else output
        if isinstance(inner, GraphQLList):
            return self._list(inner.of_type, details, non_null)
        if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            return self._scalar(inner.serialize, non_null)
        if not isinstance(inner, GraphQLObjectType):  # an interface or a union: its type is
            return None  # worked out the usual way
        grouped, new_defer_usages, _ = self._collect(inner, details)
        answer = None if new_defer_usages else self.object(inner, grouped)
        if answer is None or non_null:
            return answer  # an object's answer refuses null itself
        nullable = answer
        return lambda value: None if value is None else nullable(value)

    def _list(
        self, item_type: GraphQLOutputType, details: FieldDetailsList, non_null: bool
    ) -> Answer | None:
        item = self.value(item_type, details)
        if item is None:
            return None

        def complete(value: Any) -> Any:
            if isinstance(value, list | tuple):
                return [item(each) for each in value]
            if value is None and not non_null:
                return None
            raise Unplanned

        return complete

    def _scalar(self, serialize: Callable[[Any], Any], non_null: bool) -> Answer:
        is_awaitable = self._is_awaitable

        def complete(value: Any) -> Any:
            if value is None:
                if non_null:
                    raise Unplanned
                return None
            if is_awaitable(value) or isinstance(value, Exception):
                raise Unplanned
            serialized = serialize(value)
            if serialized is None or serialized is Undefined:
                raise Unplanned
            return serialized

        return complete


def _directed(node: FieldNode) -> bool:
    """Whether a directive other than @include and @skip is on the field (@stream, say)."""
    return any(d.name.value not in _INCLUDED for d in node.directives or ())


def _constant(value: str) -> Answer:
    return lambda _: value
