"""Automatic persisted queries, as Apollo's clients speak them: a request may carry
`extensions.persistedQuery = {version: 1, sha256Hash}` and no `query` once the server knows the
document by that hash. A client that is told the hash is unknown sends it again with the
document, which the server checks against the hash and keeps (the most recently used
`PERSISTED_QUERIES` documents) once it has parsed and validated."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from cross_web import HTTPException
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

log = logging.getLogger("storyframe.persisted")

VERSION = 1
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# As Apollo Server answers these two: 200, and never kept by a cache on the way, since the same
# GET succeeds once the document is registered.
_NOT_CACHED = {"cache-control": "private, no-cache, must-revalidate"}

Execute = Callable[[GraphQLRequestData], Awaitable[ExecutionResult]]


class Refusal(HTTPException):
    """A request refused before it runs, answered as a GraphQL error with this code."""

    def __init__(
        self, status_code: int, reason: str, code: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status_code, reason)
        self.code = code
        self.headers = dict(headers or {})


MAX_BYTES = 32 * 1024 * 1024
"""What the documents may hold in all (as Apollo Server's default store): a document may be
as large as a request body, so their number alone does not bound the memory they take."""


class PersistedQueries:
    """The documents clients registered, by the hex SHA-256 of their text: the `size` most
    recently used ones, within `max_bytes` of text in all. With a size of 0, persisted queries
    are refused as not supported."""

    def __init__(self, size: int, max_bytes: int = MAX_BYTES) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._documents: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0

    async def execute(
        self, request: GraphQLRequestData, method: str, run: Execute
    ) -> ExecutionResult:
        """Run the request with `run`: with the stored document when it sent a known hash
        alone, registering the document it sent with its hash once it parsed and validated."""
        persisted = (request.extensions or {}).get("persistedQuery")
        if not persisted:
            return await run(request)
        if self.size == 0:
            raise Refusal(
                200, "PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED", _NOT_CACHED
            )
        digest = _digest(persisted)
        if request.query is None:
            query = self._get(digest)
            if query is None:
                _note("not_found", digest, method)
                raise Refusal(
                    200, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", _NOT_CACHED
                )
            _note("hit", digest, method)
            return await run(replace(request, query=query))
        if hashlib.sha256(request.query.encode()).hexdigest() != digest:
            raise Refusal(
                400,
                "provided sha256Hash does not match the query",
                "PERSISTED_QUERY_HASH_MISMATCH",
            )
        result = await run(request)
        if not isinstance(result, PreExecutionError):
            self._put(digest, request.query)
            _note("registered", digest, method)
        return result

    def _get(self, digest: str) -> str | None:
        query = self._documents.get(digest)
        if query is not None:
            self._documents.move_to_end(digest)
        return query

    def _put(self, digest: str, query: str) -> None:
        if len(query) > self.max_bytes:
            return
        if digest not in self._documents:
            self._bytes += len(query)
        self._documents[digest] = query
        self._documents.move_to_end(digest)
        while len(self._documents) > self.size or self._bytes > self.max_bytes:
            _, dropped = self._documents.popitem(last=False)
            self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._documents)


def _digest(persisted: object) -> str:
    """The hash of a well-formed `persistedQuery` extension of a supported version."""
    if not isinstance(persisted, dict):
        raise Refusal(400, "extensions.persistedQuery must be an object", "BAD_REQUEST")
    version = persisted.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise Refusal(
            400,
            f"Unsupported persisted query version: only {VERSION} is supported",
            "PERSISTED_QUERY_VERSION_NOT_SUPPORTED",
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest.lower()):
        raise Refusal(
            400,
            "extensions.persistedQuery.sha256Hash must be a SHA-256 digest in hexadecimal",
            "BAD_REQUEST",
        )
    return digest.lower()


def _note(outcome: str, digest: str, method: str) -> None:
    log.debug(
        "persisted query %s",
        outcome,
        extra={"persisted_query": outcome, "sha256": digest, "method": method},
    )
