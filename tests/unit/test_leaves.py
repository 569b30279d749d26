"""Plain leaf fields are read straight from their object (`storyframe.schema.leaves`), with the
answers and errors graphql-core would give."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar

import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from storyframe.api_schema import build_schema
from storyframe.schema.leaves import LeafExecutor, fast_leaves
from storyframe.schema.plans import LEAF


@strawberry.enum
class Kind(Enum):
    STILL = "still"
    MOTION = "motion"


@strawberry.type
class Item:
    name: str
    count: int | None
    kind: Kind
    made: datetime

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


ITEMS = [
    Item(name="a", count=1, kind=Kind.STILL, made=datetime(2026, 1, 2, tzinfo=UTC)),
    Item(name="b", count=None, kind=Kind.MOTION, made=datetime(2026, 3, 4, tzinfo=UTC)),
    Item(name=None, count=3, kind=Kind.STILL, made=datetime(2026, 5, 6, tzinfo=UTC)),  # type: ignore[arg-type]
]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return ITEMS


class Usual(StrawberryGraphQLCoreExecutionContext):
    """Counts the fields that go graphql-core's usual way, and the objects whose fields it
    executes one by one."""

    fields: ClassVar[list[str]] = []
    objects: ClassVar[list[str]] = []
    completed: ClassVar[list[str]] = []

    def execute_fields(self, parent_type: Any, *rest: Any) -> Any:
        Usual.objects.append(parent_type.name)
        return super().execute_fields(parent_type, *rest)

    def complete_object_value(self, return_type: Any, *rest: Any) -> Any:
        Usual.completed.append(return_type.name)
        return super().complete_object_value(return_type, *rest)

    def execute_field(self, parent_type: Any, source: Any, details: Any, *rest: Any) -> Any:
        Usual.fields.append(details[0].node.name.value)
        return super().execute_field(parent_type, source, details, *rest)


class Fast(LeafExecutor, Usual):
    pass


QUERY = "{ items { name count kind made shout } }"


async def test_leaves_answer_as_graphql_core_would_without_its_machinery() -> None:
    plain = strawberry.Schema(Query, execution_context_class=Usual)
    fast = fast_leaves(strawberry.Schema(Query, execution_context_class=Fast))

    Usual.fields.clear()
    expected = await plain.execute(QUERY)
    usual_for_plain = list(Usual.fields)
    Usual.fields.clear()
    answered = await fast.execute(QUERY)

    assert answered.data == expected.data
    assert [(e.message, e.path) for e in answered.errors or []] == [
        (e.message, e.path) for e in expected.errors or []
    ]
    # the third item's null name is an error either way (and nulls the whole list)
    assert expected.errors is not None
    assert [e.path for e in expected.errors] == [["items", 2, "name"]]
    # graphql-core took every field the usual way, up to the error (then it stops the list)
    assert len(usual_for_plain) == 1 + 5 + 5 + 1
    # here only the list, the resolvers, and the null where null is not allowed did
    assert sorted(Usual.fields) == sorted(["items", "shout", "shout", "name"])


async def test_an_object_of_leaves_only_is_answered_whole() -> None:
    plain = strawberry.Schema(Query, execution_context_class=Usual)
    fast = fast_leaves(strawberry.Schema(Query, execution_context_class=Fast))
    query = "{ items { count kind made } }"

    expected = await plain.execute(query)
    Usual.fields.clear()
    Usual.objects.clear()
    Usual.completed.clear()
    answered = await fast.execute(query)

    assert answered.errors is None
    assert answered.data == expected.data
    assert answered.data == {
        "items": [
            {"count": 1, "kind": "STILL", "made": "2026-01-02T00:00:00+00:00"},
            {"count": None, "kind": "MOTION", "made": "2026-03-04T00:00:00+00:00"},
            {"count": 3, "kind": "STILL", "made": "2026-05-06T00:00:00+00:00"},
        ]
    }
    # no field of the items went graphql-core's way, nor the items, nor their list
    assert Usual.fields == ["items"]
    assert Usual.objects == ["Query"]
    assert Usual.completed == []


async def test_an_object_of_leaves_with_a_null_where_none_is_allowed_goes_the_usual_way() -> None:
    plain = strawberry.Schema(Query, execution_context_class=Usual)
    fast = fast_leaves(strawberry.Schema(Query, execution_context_class=Fast))
    query = "{ items { count name } }"

    expected = await plain.execute(query)
    Usual.fields.clear()
    answered = await fast.execute(query)

    assert answered.data == expected.data
    assert [(e.message, e.path) for e in answered.errors or []] == [
        (e.message, e.path) for e in expected.errors or []
    ]
    # the first two whole; the third, whose name is null, field by field: its count the short
    # way, its name graphql-core's (which makes the error)
    assert Usual.fields == ["items", "name"]


def test_the_schema_marks_plain_leaves_only() -> None:
    schema = build_schema()._schema
    image = schema.type_map["Image"].fields  # type: ignore[attr-defined]
    generation = schema.type_map["Generation"].fields  # type: ignore[attr-defined]

    assert LEAF in image["url"].extensions
    assert LEAF in image["createdAt"].extensions
    assert LEAF not in image["project"].extensions  # a relation
    assert LEAF not in image["appearsIn"].extensions  # a resolver
    assert LEAF not in generation["position"].extensions
