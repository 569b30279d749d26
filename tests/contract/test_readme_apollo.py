"""The README's Apollo Client set-up matches the schema: the possible types of every abstract
type, and a pagination policy for every connection."""

from __future__ import annotations

import json
import re
from pathlib import Path

from graphql import get_named_type, is_abstract_type, is_object_type

from storyframe.api_schema import build_schema

README = Path(__file__).parents[2] / "README.md"


def _apollo_block() -> str:
    text = README.read_text()
    match = re.search(r"```js\n(import \{ InMemoryCache.*?)```", text, re.DOTALL)
    assert match, "the README has no Apollo Client cache set-up"
    return match.group(1)


def test_the_readme_lists_the_possible_types_of_every_abstract_type() -> None:
    # given
    schema = build_schema()._schema
    expected = {
        name: sorted(member.name for member in schema.get_possible_types(graphql_type))
        for name, graphql_type in schema.type_map.items()
        if not name.startswith("__") and is_abstract_type(graphql_type)
    }

    # when
    block = _apollo_block()
    listed = re.search(r"possibleTypes: (\{.*?\n  \})", block, re.DOTALL)

    # then
    assert listed, block
    assert json.loads(listed.group(1)) == expected


def test_the_readme_paginates_every_connection() -> None:
    # given
    schema = build_schema()._schema
    connections = {
        (name, field_name)
        for name, graphql_type in schema.type_map.items()
        if is_object_type(graphql_type) and not name.startswith("__")
        for field_name, field in graphql_type.fields.items()
        if get_named_type(field.type).name.endswith("Connection")
    }

    # when
    block = _apollo_block()
    policies = set()
    for type_name, fields in re.findall(r"(\w+): \{\s*fields: \{(.*?)\},?\s*\}", block, re.DOTALL):
        for field_name in re.findall(r"(\w+): relayStylePagination\([^)]*\)", fields):
            policies.add((type_name, field_name))

    # then
    assert policies == connections
