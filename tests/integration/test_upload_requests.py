"""Upload requests that are not what the GraphQL multipart request spec describes: a value that
is not a file where a file goes, and multipart bodies whose `operations`, `map` or framing do not
fit. Each is refused with a JSON error and stores nothing, on both databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from storyframe.runtime import Runtime
from storyframe.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.images import image_bytes
from tests.support.scenes import seed_video
from tests.support.sql import dump
from tests.support.uploading import UPLOAD_IMAGES, media_files

PREFLIGHT = {"Apollo-Require-Preflight": "true"}
BOUNDARY = "storyframe-test-boundary"

# --- a value that is not a file, sent as JSON where a file goes --------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x", id="string"),
        pytest.param({"filename": "a.png", "content": "iVBORw0KGgo="}, id="object"),
        pytest.param(7, id="number"),
    ],
)
async def test_a_value_that_is_not_a_file_is_an_invalid_user_error(
    gql: GraphQLClient, runtime: Runtime, settings: Settings, value: object
) -> None:
    # given
    target = (await seed_video(gql)).context_id
    before = await dump(runtime.engine)

    # when
    body = await gql.execute(
        UPLOAD_IMAGES, {"input": {"targetId": target, "files": [value, value]}}
    )

    # then
    assert "errors" not in body, body
    payload = body["data"]["uploadImages"]
    assert payload["images"] is None
    (error,) = payload["userErrors"]
    assert (error["field"], error["code"]) == (["files", "0"], "INVALID")
    assert "not a file" in error["message"]
    assert await dump(runtime.engine) == before
    assert media_files(settings.media_dir) == []


# --- multipart bodies that do not fit the spec -------------------------------------------------


UPLOAD_AS_I = """
mutation Upload($i: UploadImagesInput!) {
  uploadImages(input: $i) { images { id byteSize } userErrors { field message code } }
}
"""


def _operations(target: str) -> dict[str, Any]:
    return {"query": UPLOAD_AS_I, "variables": {"i": {"targetId": target, "files": [None]}}}


def _form(operations: str, mapping: str) -> bytes:
    """A multipart body with the `operations` and `map` fields as given and one PNG part, `0`."""
    fields = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("operations", operations), ("map", mapping))
    ).encode()
    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return fields + part + image_bytes() + f"\r\n--{BOUNDARY}--\r\n".encode()


QUERY = json.dumps(UPLOAD_AS_I)
# Each malformed request's (operations, map) fields, as sent, made from well-formed operations.
MALFORMED_FORMS: dict[str, Callable[[str], tuple[str, str]]] = {
    "index past the end": lambda ops: (ops, '{"0": ["variables.i.files.1"]}'),
    "negative index": lambda ops: (ops, '{"0": ["variables.i.files.-1"]}'),
    "huge index": lambda ops: (ops, '{"0": ["variables.i.files.99999999999999999999999"]}'),
    "index that is not a number": lambda ops: (ops, '{"0": ["variables.i.files.x"]}'),
    "path into a string": lambda ops: (ops, '{"0": ["variables.i.targetId.x"]}'),
    "path into the placeholder": lambda ops: (ops, '{"0": ["variables.i.files.0.x"]}'),
    "path to a value, not a null": lambda ops: (ops, '{"0": ["variables.i.targetId"]}'),
    "unknown operation key": lambda ops: (ops, '{"0": ["variables.input.files.0"]}'),
    "empty path": lambda ops: (ops, '{"0": [""]}'),
    "map names no part": lambda ops: (ops, '{"7": ["variables.i.files.0"]}'),
    "map names a text field": lambda ops: (ops, '{"operations": ["variables.i.files.0"]}'),
    "map of one path, not a list": lambda ops: (ops, '{"0": "variables.i.files.0"}'),
    "map path that is a number": lambda ops: (ops, '{"0": [0]}'),
    "map that is a list": lambda ops: (ops, '["variables.i.files.0"]'),
    "map that is null": lambda ops: (ops, "null"),
    "map that is not JSON": lambda ops: (ops, "{0: variables.i.files.0}"),
    "operations that are a string": lambda ops: ('"query"', '{"0": ["variables.i.files.0"]}'),
    "operations that are a number": lambda ops: ("12", "{}"),
    "operations that are null": lambda ops: ("null", "{}"),
    "operations that are not JSON": lambda ops: ("{query: " + QUERY + "}", "{}"),
}


@pytest.mark.parametrize("case", list(MALFORMED_FORMS))
async def test_a_malformed_multipart_request_is_a_400_with_a_json_error(
    http: httpx.AsyncClient, gql: GraphQLClient, runtime: Runtime, settings: Settings, case: str
) -> None:
    # given
    target = (await seed_video(gql)).context_id
    operations, mapping = MALFORMED_FORMS[case](json.dumps(_operations(target)))
    before = await dump(runtime.engine)

    # when
    response = await http.post(
        "/graphql",
        content=_form(operations, mapping),
        headers={**PREFLIGHT, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )

    # then
    _assert_bad_request(response)
    assert await dump(runtime.engine) == before
    assert media_files(settings.media_dir) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("multipart/form-data", b"--x\r\n\r\n--x--\r\n", id="no boundary"),
        pytest.param(
            f"multipart/form-data; boundary={BOUNDARY}",
            f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n".encode(),
            id="part without a name",
        ),
        pytest.param(
            f"multipart/form-data; boundary={BOUNDARY}", b"no parts at all", id="no parts"
        ),
    ],
)
async def test_a_multipart_body_that_does_not_parse_is_a_400_with_a_json_error(
    http: httpx.AsyncClient, runtime: Runtime, settings: Settings, content_type: str, body: bytes
) -> None:
    # given
    before = await dump(runtime.engine)

    # when
    response = await http.post(
        "/graphql", content=body, headers={**PREFLIGHT, "Content-Type": content_type}
    )

    # then
    _assert_bad_request(response)
    assert await dump(runtime.engine) == before
    assert media_files(settings.media_dir) == []


async def test_a_well_formed_multipart_request_still_uploads(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    # given: the same form as the malformed ones, mapped as the spec says
    target = (await seed_video(gql)).context_id
    body = _form(json.dumps(_operations(target)), '{"0": ["variables.i.files.0"]}')

    # when
    response = await http.post(
        "/graphql",
        content=body,
        headers={**PREFLIGHT, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )

    # then
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["uploadImages"]
    assert payload["userErrors"] == []
    (image,) = payload["images"]
    assert image["byteSize"] == len(image_bytes())


def _assert_bad_request(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert set(body) == {"errors"}
