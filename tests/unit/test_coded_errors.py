"""What CodedErrors makes of the errors graphql-core raises itself: every one leaves with a code,
and one that is a fault of the server's is masked with an id, as any unexpected error is."""

from __future__ import annotations

import logging

import pytest
import strawberry

from storyframe.schema.errors import CodedErrors


@strawberry.type
class Query:
    @strawberry.field
    def title(self) -> str:
        return None  # type: ignore[return-value]  # a broken promise: null for a String!

    @strawberry.field
    def echo(self, times: int) -> int:
        return times


SCHEMA = strawberry.Schema(query=Query, extensions=[CodedErrors])


async def test_a_null_where_none_may_be_is_an_internal_error_with_an_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # when
    with caplog.at_level(logging.ERROR, logger="storyframe.errors"):
        result = await SCHEMA.execute("{ title }")

    # then
    (error,) = result.errors or []
    assert error.message == "Internal server error"
    assert error.extensions is not None
    assert error.extensions["code"] == "INTERNAL_SERVER_ERROR"
    assert error.extensions["errorId"] in caplog.text


async def test_variables_that_do_not_coerce_are_bad_user_input() -> None:
    # when
    result = await SCHEMA.execute(
        "query($n: Int!) { echo(times: $n) }", variable_values={"n": "many"}
    )

    # then
    (error,) = result.errors or []
    assert error.extensions == {"code": "BAD_USER_INPUT"}
