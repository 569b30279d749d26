"""How failures appear in responses: `userErrors` for expected ones, masked errors otherwise."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from storyframe.db.outage import is_unreachable
from storyframe.domain import errors as domain

log = logging.getLogger("storyframe.errors")

SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "the database is unavailable; try again shortly"

ErrorCode = strawberry.enum(
    domain.ErrorCode,
    name="ErrorCode",
    description="Why an input was refused, or why work it asked for failed.",
)


@strawberry.type(description="An input the mutation refused; nothing was changed.")
class UserError:
    field: list[str] | None = strawberry.field(
        description="Path to the input field at fault, relative to `input`."
    )
    message: str
    code: ErrorCode  # type: ignore[valid-type]

    @classmethod
    def of(cls, error: domain.DomainError) -> UserError:
        return cls(field=error.field, message=error.message, code=error.code)


class CodedErrors(SchemaExtension):
    """Keeps the message of expected errors; replaces any other with an id that is logged."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [_shown(error) for error in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """The same for each result a subscription sends."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [_shown(error) for error in errors]
        yield


def _shown(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if (error.extensions or {}).get("code"):
        return error
    if original is None or isinstance(original, GraphQLError):
        # graphql-core's own. Before execution only the variables can still fail to coerce (the
        # document checks code parse and validation errors); during it, a field that broke its
        # type's promise (a null where none may be) is a fault of ours.
        if error.path is None:
            return with_code(error, "BAD_USER_INPUT")
        return _masked(error, error)
    if isinstance(original, domain.Unauthenticated):
        return GraphQLError(
            str(original),
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "UNAUTHENTICATED"},
        )
    if isinstance(original, domain.DomainError):
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            path=error.path,
            extensions={"code": original.code.value, "field": original.field},
        )
    if is_unreachable(original):
        # Not a bug, so no id and no stack trace: the server logs the outage once.
        return GraphQLError(
            UNAVAILABLE_MESSAGE,
            nodes=error.nodes,
            path=error.path,
            original_error=original,
            extensions={"code": SERVICE_UNAVAILABLE},
        )
    return _masked(error, original)


def _masked(error: GraphQLError, cause: BaseException) -> GraphQLError:
    """An unexpected error, logged with its stack trace under an id the client is given."""
    error_id = uuid.uuid4().hex
    log.error(
        "unexpected error %s at %s",
        error_id,
        ".".join(map(str, error.path or [])),
        exc_info=cause,
        extra={"error_id": error_id},
    )
    return GraphQLError(
        "Internal server error",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "errorId": error_id},
    )


def with_code(error: GraphQLError, code: str) -> GraphQLError:
    """The same error, where it was, with `extensions.code`."""
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        extensions={**(error.extensions or {}), "code": code},
    )
