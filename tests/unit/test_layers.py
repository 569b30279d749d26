"""The layers import one way: `app → resolvers → {schema, services} → domain`, with `db`,
`storage` and `providers` implementing the domain's ports below the services. Read from the
source, so a wrong import fails here before it tangles anything.

The entities are SQLModel classes (`storyframe.db.tables`): one definition serves as the domain's
rows and as the tables, so the domain and the services may import that one module of `db`, and
nothing else of it: the repository and the reader reach the services only through the ports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "storyframe"


def _imports(path: Path) -> set[str]:
    """Every module the file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _layer(name: str) -> dict[str, set[str]]:
    """The imports of each module of a layer (a subpackage or a module of `storyframe`)."""
    paths = sorted((PACKAGE / name).rglob("*.py")) if (PACKAGE / name).is_dir() else []
    if not paths:
        paths = [PACKAGE / f"{name}.py"]
    return {str(path.relative_to(PACKAGE.parent)): _imports(path) for path in paths}


def _offences(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {imported}"
        for module, imported_modules in _layer(layer).items()
        for imported in imported_modules
        if any(imported == name or imported.startswith(f"{name}.") for name in forbidden)
    )


API = ("strawberry", "starlette", "storyframe.schema", "storyframe.resolvers")
DB_BEHIND_PORTS = (
    "storyframe.db.engine",
    "storyframe.db.repository",
    "storyframe.db.reader",
    "storyframe.db.places",
    "storyframe.db.accounts",
    "storyframe.db.blobs",
    "storyframe.db.generations",
    "storyframe.db.migrate",
    "storyframe.db.outage",
    "storyframe.db.ownership",
    "storyframe.db.reads",
    "storyframe.db.ratelimits",
    "storyframe.db.queue_schema",
    "storyframe.db.exports",
    "storyframe.db.diagnostics",
)
RULES = [
    # the vocabulary at the bottom: nothing above it, no implementation of its ports
    (
        "domain",
        (
            *API,
            "storyframe.services",
            "storyframe.storage",
            "storyframe.providers",
            "storyframe.jobs",
            "storyframe.events",
            *DB_BEHIND_PORTS,
        ),
    ),
    # the domain's behaviour knows nothing of GraphQL or HTTP, nor of how the ports are built
    (
        "services",
        (
            *API,
            "storyframe.storage",
            "storyframe.providers",
            "storyframe.jobs",
            "storyframe.events",
            *DB_BEHIND_PORTS,
        ),
    ),
    # persistence, storage and providers implement ports; they never reach for the services
    ("db", (*API, "storyframe.services")),
    ("providers", (*API, "storyframe.services", "storyframe.db")),
    # (storage serves local media over Starlette, so only GraphQL is kept out of it)
    ("storage", ("strawberry", "storyframe.schema", "storyframe.resolvers", "storyframe.services")),
    # the shape of the API asks DataLoaders for data; it never reaches for the roots
    ("schema", ("storyframe.resolvers",)),
    # the job engine and the events carry ids between processes; they know no behaviour
    ("jobs", (*API, "storyframe.services", "storyframe.storage", "storyframe.providers")),
    ("events", (*API, "storyframe.services", "storyframe.db", "storyframe.jobs")),
    # the pages Storyframe serves itself are files and Starlette routes: no data, no GraphQL
    (
        "web",
        (
            "strawberry",
            "storyframe.schema",
            "storyframe.resolvers",
            "storyframe.services",
            "storyframe.db",
            "storyframe.storage",
            "storyframe.providers",
            "storyframe.jobs",
            "storyframe.events",
        ),
    ),
]
ENTRY_POINTS = (
    # the app layer: the factory, what it wires, and the HTTP endpoint it serves
    "storyframe.app",
    "storyframe.api_schema",
    "storyframe.runtime",
    "storyframe.view",
    "storyframe.health",
    "storyframe.graphql_http",
    "storyframe.persisted",
    "storyframe.multipart",
    "storyframe.cli",
    "storyframe.selftest",
)


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[rule[0] for rule in RULES])
def test_a_layer_does_not_import_the_layers_above_it(
    layer: str, forbidden: tuple[str, ...]
) -> None:
    assert _layer(layer), f"no modules found for {layer}"
    assert _offences(layer, forbidden) == []


@pytest.mark.parametrize(
    "layer",
    [
        "domain",
        "services",
        "db",
        "providers",
        "storage",
        "schema",
        "resolvers",
        "settings",
        "jobs",
        "events",
        "web",
    ],
)
def test_nothing_but_the_command_line_imports_the_app(layer: str) -> None:
    assert _offences(layer, ENTRY_POINTS) == []


def test_the_checks_see_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "wrong.py"
    module.write_text("def f():\n    from strawberry import ID\n    import storyframe.app.x\n")

    assert _imports(module) == {"strawberry", "storyframe.app.x"}


def test_every_module_of_db_but_the_tables_is_behind_the_ports() -> None:
    """A new module of `db` is kept out of the domain and the services until it is listed."""
    modules = {
        f"storyframe.db.{path.stem}"
        for path in (PACKAGE / "db").glob("*.py")
        if path.stem not in ("__init__", "tables")
    }
    assert modules == set(DB_BEHIND_PORTS)
