"""The GraphQL multipart request spec: files put where a request's `map` says they go."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

from cross_web import HTTPException
from starlette.datastructures import UploadFile

_MAX_INDEX_DIGITS = 9


def files_in_place(operations: object, mapping: object, files: Mapping[str, Any]) -> dict[str, str]:
    """A copy of `operations` with every file put where `mapping` says, as the GraphQL
    multipart request spec has it: `{"<part name>": ["<dotted path>", …], …}`, each path
    naming a `null` placeholder in `operations`. Raises HTTPException (400) on what does not fit.
    """
    if not isinstance(operations, (dict, list)):
        raise HTTPException(400, "The multipart field `operations` must be a JSON object")
    if not isinstance(mapping, dict):
        raise HTTPException(400, "The multipart field `map` must be a JSON object")
    placed = copy.deepcopy(operations)
    for name, paths in mapping.items():
        if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
            raise HTTPException(400, f"`map` entry {name!r} must be a list of paths")
        file = files.get(name)
        if not isinstance(file, UploadFile):
            raise HTTPException(400, f"`map` entry {name!r} names no file part of the request")
        for path in paths:
            container, key = _placeholder(placed, path)
            container[key] = file
    return cast("dict[str, str]", placed)  # as Strawberry annotates it; any JSON, in truth


def _placeholder(operations: dict[str, Any] | list[Any], path: str) -> tuple[Any, Any]:
    """The container and key of the `null` that `path` (keys and list indexes, dotted) names."""
    node: Any = operations
    keys = path.split(".")
    for depth, key in enumerate(keys, 1):
        found: str | int
        if isinstance(node, dict) and key in node:
            found = key
        elif (
            isinstance(node, list)
            and key.isascii()
            and key.isdigit()
            and len(key) <= _MAX_INDEX_DIGITS
            and int(key) < len(node)
        ):
            found = int(key)
        else:
            raise HTTPException(400, f"`map` path {path!r} leads to nothing in `operations`")
        if depth == len(keys):
            if node[found] is not None:
                raise HTTPException(400, f"`map` path {path!r} does not lead to a `null`")
            return node, found
        node = node[found]
    raise AssertionError("unreachable: a path has at least one key")
