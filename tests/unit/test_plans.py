"""Selections answered whole (`storyframe.schema.plans`): nested objects, lists and relations
whose data is at hand are read without graphql-core's machinery, with the answers and the errors
graphql-core gives; anything else goes its usual way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import pytest
import strawberry
from strawberry.dataloader import DataLoader
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from storyframe.schema.leaves import LeafExecutor, fast_leaves
from storyframe.schema.nodes import related
from storyframe.schema.relations import resolve_relations_directly


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Tag(Named):
    weight: float | None


@strawberry.type
class Shot:
    name: str
    seconds: int | None
    tags: list[Tag]
    tag_pks: strawberry.Private[list[int]]
    cover: Tag | None
    owner_pk: strawberry.Private[int]
    owner: Person = related(lambda loaders, shot, _: (cast(Any, loaders).people, shot.owner_pk))

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    def first_tag(self) -> Named | None:
        return self.tags[0] if self.tags else None


@strawberry.type
class Person:
    pk: strawberry.Private[int]
    name: str


PEOPLE = {1: Person(pk=1, name="Ada"), 2: Person(pk=2, name="Grace")}


def shots() -> list[Shot]:
    red, blue = Tag(name="red", weight=0.5), Tag(name="blue", weight=None)
    return [
        Shot(name="a", seconds=1, tags=[red, blue], tag_pks=[], cover=red, owner_pk=1),
        Shot(name="b", seconds=None, tags=[], tag_pks=[], cover=None, owner_pk=2),
    ]


@dataclass
class Loaders:
    people: DataLoader[int, Person]


@dataclass
class Context:
    loaders: Loaders = field(default_factory=lambda: Loaders(DataLoader(load_people)))


async def load_people(pks: list[int]) -> list[Person]:
    return [PEOPLE[pk] for pk in pks]


@strawberry.type
class Query:
    @strawberry.field
    def shots(self) -> list[Shot]:
        return shots()

    @strawberry.field
    async def loaded_shots(self, info: strawberry.Info[Context, None]) -> list[Shot]:
        """The shots with their owners loaded first, as the API's list resolvers prefetch."""
        found = shots()
        await info.context.loaders.people.load_many([shot.owner_pk for shot in found])
        return found

    @strawberry.field
    def broken_shots(self) -> list[Shot]:
        found = shots()
        found[1].tags = [Tag(name=None, weight=1.0)]  # type: ignore[arg-type]
        return found


class Usual(StrawberryGraphQLCoreExecutionContext):
    """Counts the fields graphql-core executes the usual way."""

    fields: ClassVar[list[str]] = []

    def execute_field(self, parent_type: Any, source: Any, details: Any, *rest: Any) -> Any:
        Usual.fields.append(details[0].node.name.value)
        return super().execute_field(parent_type, source, details, *rest)


class Planned(LeafExecutor, Usual):
    pass


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    usual = strawberry.Schema(Query, execution_context_class=Usual)
    planned = resolve_relations_directly(
        fast_leaves(strawberry.Schema(Query, execution_context_class=Planned))
    )
    return usual, planned


async def both(query: str, variables: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
    """The planned answer, checked against graphql-core's, and the fields it executed."""
    usual, planned = schemas()
    expected = await usual.execute(query, variables, context_value=Context())
    Usual.fields.clear()
    answered = await planned.execute(query, variables, context_value=Context())
    assert answered.data == expected.data
    assert [(e.message, e.path) for e in answered.errors or []] == [
        (e.message, e.path) for e in expected.errors or []
    ]
    return answered, list(Usual.fields)


async def test_nested_objects_and_lists_are_answered_whole() -> None:
    query = """{ shots { __typename name seconds cover { name weight }
                 tags { name ... on Tag { weight } } alias: tags { n: name } } }"""
    answered, fields = await both(query)

    assert answered.data["shots"][0]["tags"][1] == {"name": "blue", "weight": None}
    assert answered.data["shots"][1]["cover"] is None
    assert fields == ["shots"]  # only the root field's resolver, nothing below it


async def test_loaded_relations_are_answered_whole_and_others_the_usual_way() -> None:
    loaded, loaded_fields = await both("{ loadedShots { name owner { name } } }")
    pending, pending_fields = await both("{ shots { name owner { name } } }")

    assert loaded.data == {
        "loadedShots": [
            {"name": "a", "owner": {"name": "Ada"}},
            {"name": "b", "owner": {"name": "Grace"}},
        ]
    }
    assert loaded_fields == ["loadedShots"]
    # the owners were not loaded yet: the list goes field by field and awaits them
    assert pending.data == {"shots": loaded.data["loadedShots"]}
    assert pending_fields.count("owner") == 2


async def test_a_resolver_sends_its_object_the_usual_way_and_lists_below_are_planned() -> None:
    _, fields = await both("{ shots { shout tags { name weight } } }")

    # each shot field by field (its resolver, and its list of tags as one field); the tags whole
    assert sorted(fields) == sorted(["shots", "shout", "tags", "shout", "tags"])


async def test_an_abstract_type_is_worked_out_the_usual_way() -> None:
    answered, fields = await both("{ shots { firstTag { name ... on Tag { weight } } } }")

    assert answered.data["shots"] == [
        {"firstTag": {"name": "red", "weight": 0.5}},
        {"firstTag": None},
    ]
    # graphql-core resolves the interface's type; the Tag it finds has its leaves read straight
    assert fields == ["shots", "firstTag", "firstTag"]


async def test_a_null_where_none_is_allowed_gets_graphql_cores_error_and_path() -> None:
    answered, _ = await both("{ brokenShots { name tags { name } } }")

    assert answered.errors is not None
    assert [e.path for e in answered.errors] == [["brokenShots", 1, "tags", 0, "name"]]
    assert answered.data is None  # the non-null list of non-null shots takes the error up


@pytest.mark.parametrize("shown", [True, False])
async def test_skip_and_include_with_variables_hold_in_a_plan(shown: bool) -> None:
    query = """query ($shown: Boolean!) { shots { name cover @include(if: $shown) { name }
               seconds @skip(if: $shown) } }"""
    answered, fields = await both(query, {"shown": shown})

    first = answered.data["shots"][0]
    assert ("cover" in first) is shown
    assert ("seconds" in first) is not shown
    assert fields == ["shots"]
