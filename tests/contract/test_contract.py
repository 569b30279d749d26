"""The GraphQL contract: the frontend's documents, the exported SDL, and breaking changes.

See README.md in this directory for the conventions (one operation per file, fragments by name)
and for how to cut a release of the schema.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    BreakingChange,
    DangerousChange,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    parse,
    validate,
)
from graphql import build_schema as build_schema_from_sdl
from graphql.utilities import find_schema_changes

from storyframe.api_schema import build_schema, document_checks
from storyframe.cli import main as cli_main
from storyframe.settings import Settings
from tests.support.apps import OWNER_EMAIL
from tests.support.clients import GraphQLClient

CONTRACT = Path(__file__).parent
FRAGMENTS = CONTRACT / "fragments"
RELEASED = CONTRACT / "released" / "schema.graphql"
EXPORTED = CONTRACT.parent.parent / "schema.graphql"
EXPORT_COMMAND = "storyframe export-schema -o schema.graphql"

OPERATION_FILES = sorted(CONTRACT.glob("*.graphql"))
FRAGMENT_FILES = sorted(FRAGMENTS.glob("*.graphql"))


# --- loading documents ------------------------------------------------------------------------


@cache
def current_sdl() -> str:
    """The SDL the code produces, exactly as `storyframe export-schema` writes it."""
    return build_schema().as_str() + "\n"


@cache
def current_schema() -> GraphQLSchema:
    """The graphql-core schema behind the Strawberry schema the app serves."""
    return build_schema()._schema


def _spreads(selection_set: SelectionSetNode | None) -> Iterator[str]:
    """Names of the fragments spread anywhere in a selection set."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FragmentSpreadNode):
            yield selection.name.value
        elif isinstance(selection, FieldNode | InlineFragmentNode):
            yield from _spreads(selection.selection_set)


def _used_fragments(document: DocumentNode) -> set[str]:
    used: set[str] = set()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            used.update(_spreads(definition.selection_set))
    return used


def fragment_source(name: str) -> str:
    path = FRAGMENTS / f"{name}.graphql"
    assert path.is_file(), f"`...{name}` is spread but fragments/{name}.graphql is missing"
    return path.read_text()


def load_document(name: str) -> str:
    """The operation file `name.graphql` with every fragment it uses, directly or not, appended."""
    sources = [(CONTRACT / f"{name}.graphql").read_text()]
    pending = _used_fragments(parse(sources[0]))
    appended: set[str] = set()
    while pending:
        fragment = min(pending)
        pending.discard(fragment)
        appended.add(fragment)
        source = fragment_source(fragment)
        sources.append(source)
        pending.update(_used_fragments(parse(source)) - appended)
    return "\n".join(sources)


def _operation(document: DocumentNode) -> OperationDefinitionNode:
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return operation


def _root_fields(document: DocumentNode) -> Iterator[FieldNode]:
    for selection in _operation(document).selection_set.selections:
        assert isinstance(selection, FieldNode), "spread no fragments at the root of an operation"
        yield selection


Fragments = dict[str, FragmentDefinitionNode]


def _fields(selection_set: SelectionSetNode | None, fragments: Fragments) -> Iterator[FieldNode]:
    """The fields selected in a selection set, those of the fragments it spreads included."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, FragmentSpreadNode):
            yield from _fields(fragments[selection.name.value].selection_set, fragments)


def _subselection(field: FieldNode, name: str, fragments: Fragments) -> set[str] | None:
    """The plain field names selected under `field.name` (through fragments too), or None when
    it is not selected."""
    for selection in _fields(field.selection_set, fragments):
        if selection.name.value == name:
            return {nested.name.value for nested in _fields(selection.selection_set, fragments)}
    return None


def _ids(paths: Iterable[Path]) -> list[str]:
    return [str(path.relative_to(CONTRACT)) for path in paths]


# --- the documents ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", OPERATION_FILES, ids=_ids(OPERATION_FILES))
def test_document_is_one_operation_named_after_its_file(path: Path) -> None:
    document = parse(path.read_text())
    definitions = document.definitions
    assert len(definitions) == 1, "one operation per file; fragments go to fragments/<Name>.graphql"
    operation = definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    assert operation.name is not None, "the operation must be named"
    assert operation.name.value == path.stem


@pytest.mark.parametrize("path", OPERATION_FILES, ids=_ids(OPERATION_FILES))
def test_document_validates_against_the_schema(path: Path) -> None:
    document = parse(load_document(path.stem))
    errors = validate(current_schema(), document)
    assert not errors, "\n".join(str(error) for error in errors)


@pytest.mark.parametrize("path", OPERATION_FILES, ids=_ids(OPERATION_FILES))
def test_document_fits_the_default_cost_limit(path: Path) -> None:
    # given: the largest pages a document asks for, and every plain list at its bound
    settings = Settings()
    checks = document_checks(settings)(current_schema())

    # when
    prepared = checks.prepare(load_document(path.stem))
    cost = checks.cost(prepared, None, {})

    # then
    assert prepared.errors == []
    assert 0 < cost <= settings.max_query_cost


@pytest.mark.parametrize("path", FRAGMENT_FILES, ids=_ids(FRAGMENT_FILES))
def test_fragment_file_is_one_fragment_named_after_it(path: Path) -> None:
    definitions = parse(path.read_text()).definitions
    assert len(definitions) == 1, "one fragment per file"
    fragment = definitions[0]
    assert isinstance(fragment, FragmentDefinitionNode)
    assert fragment.name.value == path.stem


def test_every_fragment_is_used() -> None:
    used: set[str] = set()
    for path in OPERATION_FILES:
        used |= _used_fragments(parse(load_document(path.stem)))
    unused = {path.stem for path in FRAGMENT_FILES} - used
    assert not unused, f"fragments no document uses: {sorted(unused)}"


@pytest.mark.parametrize(
    "operation_type", [OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION]
)
def test_every_root_field_has_a_document(operation_type: OperationType) -> None:
    """A new root field needs a contract document showing how the frontend calls it."""
    root = current_schema().get_root_type(operation_type)
    assert root is not None
    covered = {
        field.name.value
        for path in OPERATION_FILES
        for document in [parse(path.read_text())]
        if _operation(document).operation is operation_type
        for field in _root_fields(document)
    }
    missing = set(root.fields) - covered
    assert not missing, f"no contract document uses {root.name}.{{{', '.join(sorted(missing))}}}"


MUTATION_FILES = [
    path
    for path in OPERATION_FILES
    if _operation(parse(path.read_text())).operation is OperationType.MUTATION
]


@pytest.mark.parametrize("path", MUTATION_FILES, ids=_ids(MUTATION_FILES))
def test_mutation_selects_its_user_errors_and_what_it_deleted(path: Path) -> None:
    document = parse(load_document(path.stem))
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    (field,) = _root_fields(document)
    assert _subselection(field, "userErrors", fragments) == {"field", "message", "code"}
    mutation_type = current_schema().mutation_type
    assert mutation_type is not None
    payload = get_named_type(mutation_type.fields[field.name.value].type)
    assert isinstance(payload, GraphQLObjectType)
    if "deleted" in payload.fields:  # what went with it, counted
        deleted = _subselection(field, "deleted", fragments)
        assert deleted == {"videos", "frames", "messages", "images"}


# --- the exported schema ----------------------------------------------------------------------


def test_committed_schema_is_the_exported_schema() -> None:
    committed = EXPORTED.read_text()
    if committed != current_sdl():
        diff = difflib.unified_diff(
            committed.splitlines(),
            current_sdl().splitlines(),
            "schema.graphql (committed)",
            "build_schema() (the code)",
            lineterm="",
        )
        pytest.fail(
            f"schema.graphql is out of date: run `{EXPORT_COMMAND}` and commit it.\n"
            + "\n".join(list(diff)[:80]),
            pytrace=False,
        )


def test_cli_writes_the_schema(tmp_path: Path) -> None:
    output = tmp_path / "s.graphql"
    assert cli_main(["export-schema", "-o", str(output)]) == 0
    assert output.read_text() == current_sdl()


def test_cli_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["export-schema"]) == 0
    assert capsys.readouterr().out == current_sdl()


# --- breaking changes against the last release --------------------------------------------------


def classify_changes(
    released_sdl: str, current: GraphQLSchema
) -> tuple[list[BreakingChange], list[DangerousChange]]:
    """The breaking and the dangerous changes from the released SDL to `current`.

    `find_schema_changes` is graphql-core 3.3's replacement of the deprecated
    `find_breaking_changes` and `find_dangerous_changes`; it also lists safe changes, ignored here.
    """
    changes = find_schema_changes(build_schema_from_sdl(released_sdl), current)
    breaking = [c for c in changes if isinstance(c, BreakingChange)]
    dangerous = [c for c in changes if isinstance(c, DangerousChange)]
    return breaking, dangerous


def test_no_breaking_changes_since_the_release() -> None:
    breaking, dangerous = classify_changes(RELEASED.read_text(), current_schema())
    for change in dangerous:
        print(f"dangerous change since the release ({change.type.name}): {change.description}")
    if breaking:
        listed = "\n".join(f"- {c.type.name}: {c.description}" for c in breaking)
        pytest.fail(
            f"{len(breaking)} breaking change(s) against tests/contract/released/schema.graphql:\n"
            f"{listed}\nKeep the old fields (deprecate them) or, if the frontend has moved on, "
            "cut a new release as tests/contract/README.md says.",
            pytrace=False,
        )


def test_breaking_and_dangerous_changes_are_told_apart() -> None:
    old = """
        enum Kind { A B }
        type Query { a(first: Int = 20): Int  b: Int  kind: Kind }
    """
    new = build_schema_from_sdl("""
        enum Kind { A B C }
        type Query { a(first: Int = 10): Int  kind: Kind  c: Int }
    """)
    breaking, dangerous = classify_changes(old, new)
    assert [c.description for c in breaking] == ["Field Query.b was removed."]
    assert sorted(c.type.name for c in dangerous) == [
        "ARG_DEFAULT_VALUE_CHANGE",
        "VALUE_ADDED_TO_ENUM",
    ]


# --- executed end to end --------------------------------------------------------------------------


async def run(gql: GraphQLClient, name: str, **variables: Any) -> dict[str, Any]:
    """`data` of the contract document `name`, executed by the app; it must have no errors."""
    return await gql.data(load_document(name), variables)


async def mutate(gql: GraphQLClient, name: str, input: dict[str, Any]) -> dict[str, Any]:
    """The payload of the contract mutation `name`; it must have no user errors."""
    return await gql.mutate(load_document(name), {"input": input})


async def test_the_storyboard_is_built_and_read_with_the_contract_documents(
    gql: GraphQLClient,
) -> None:
    project = (await mutate(gql, "CreateProject", {"name": "Trip"}))["project"]
    assert project["name"] == "Trip"
    assert (project["videoCount"], project["imageCount"], project["galleryCount"]) == (0, 0, 0)

    video = (await mutate(gql, "CreateVideo", {"projectId": project["id"], "name": "Teaser"}))[
        "video"
    ]
    assert video["project"] == {"id": project["id"], "videoCount": 1}
    assert video["context"]["content"] == ""
    assert len(video["mainChats"]) == 1

    first = (await mutate(gql, "CreateFrame", {"videoId": video["id"], "title": "Harbour"}))[
        "frame"
    ]
    assert (first["order"], first["selectedImage"]) == (0, None)
    opening = (
        await mutate(gql, "CreateFrame", {"videoId": video["id"], "title": "Dawn", "order": 0})
    )["frame"]
    assert opening["video"]["frames"] == [
        {"id": opening["id"], "order": 0},
        {"id": first["id"], "order": 1},
    ]

    storyboard = (await run(gql, "Video", id=video["id"]))["video"]
    assert storyboard["id"] == video["id"]
    assert storyboard["name"] == "Teaser"
    assert storyboard["frameCount"] == 2
    assert storyboard["context"]["id"] == video["context"]["id"]
    assert [chat["id"] for chat in storyboard["mainChats"]] == [video["mainChats"][0]["id"]]
    assert [(f["title"], f["order"]) for f in storyboard["frames"]] == [("Dawn", 0), ("Harbour", 1)]
    for frame in storyboard["frames"]:
        assert frame["selectedImage"] is None
        assert frame["messages"] == {"totalCount": 0, "edges": []}


async def test_refetching_reordering_and_deleting_with_the_contract_documents(
    gql: GraphQLClient,
) -> None:
    project = (await mutate(gql, "CreateProject", {"name": "Trip"}))["project"]
    video = (await mutate(gql, "CreateVideo", {"projectId": project["id"], "name": "Teaser"}))[
        "video"
    ]
    frames = [
        (await mutate(gql, "CreateFrame", {"videoId": video["id"], "title": title}))["frame"]
        for title in ("one", "two", "three")
    ]

    listed = (await run(gql, "Projects", first=10))["projects"]
    assert listed["totalCount"] == 1
    assert [edge["node"]["id"] for edge in listed["edges"]] == [project["id"]]

    fetched = (await run(gql, "Node", id=frames[1]["id"]))["node"]
    assert (fetched["__typename"], fetched["title"]) == ("Frame", "two")
    both = (await run(gql, "Nodes", ids=[video["id"], project["id"]]))["nodes"]
    assert [(n["__typename"], n["id"]) for n in both] == [
        ("Video", video["id"]),
        ("Project", project["id"]),
    ]

    reordered = await mutate(gql, "ReorderFrame", {"id": frames[2]["id"], "newOrder": 0})
    assert reordered["frame"] == {"id": frames[2]["id"], "order": 0}
    assert [f["id"] for f in reordered["video"]["frames"]] == [
        frames[2]["id"],
        frames[0]["id"],
        frames[1]["id"],
    ]

    gone = await mutate(gql, "DeleteFrame", {"id": frames[0]["id"]})
    assert gone["deletedId"] == frames[0]["id"]
    assert gone["deleted"] == {"videos": 0, "frames": 1, "messages": 0, "images": 0}
    assert [f["order"] for f in gone["video"]["frames"]] == [0, 1]

    dropped = await mutate(gql, "DeleteProject", {"id": project["id"]})
    assert dropped["deleted"] == {"videos": 1, "frames": 2, "messages": 0, "images": 0}
    assert (await run(gql, "Node", id=project["id"]))["node"] is None


async def test_the_viewer_document_answers_null_without_a_token(
    anonymous_gql: GraphQLClient, gql: GraphQLClient
) -> None:
    # when
    anonymous = await run(anonymous_gql, "Viewer")
    logged_in = await run(gql, "Viewer")

    # then: a client learns whether it is logged in without an error
    assert anonymous == {"viewer": None}
    assert logged_in["viewer"]["email"] == OWNER_EMAIL
