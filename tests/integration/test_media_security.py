"""What a browser may do with served media: take it for an image, and never run it."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.support.clients import GraphQLClient
from tests.support.images import image_bytes
from tests.support.scenes import seed_video
from tests.support.uploading import File, upload_ok

HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
NOSNIFF = "nosniff"
SANDBOX = "default-src 'none'; sandbox"


def _html_after_the_end() -> bytes:
    """A PNG whose bytes go on, after its end marker, as an HTML page."""
    return image_bytes(color=(1, 200, 3)) + HTML


def _html_in_a_text_chunk() -> bytes:
    """A PNG carrying an HTML page in a text chunk."""
    info = PngInfo()
    info.add_text("Comment", HTML.decode())
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (4, 5, 200)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _assert_guarded(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == NOSNIFF
    assert response.headers["content-security-policy"] == SANDBOX


async def _uploaded(gql: GraphQLClient, http: httpx.AsyncClient, data: bytes) -> tuple[str, str]:
    """(path of the image, path of its thumbnail)."""
    video = await seed_video(gql)
    (image,) = await upload_ok(http, video.project_id, [File("page.png", data)])
    return httpx.URL(image["url"]).path, httpx.URL(image["thumbnailUrl"]).path


@pytest.mark.parametrize("data", [_html_after_the_end(), _html_in_a_text_chunk()])
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # served from disk either way
async def test_an_image_carrying_html_is_served_as_is_but_never_sniffed_nor_run(
    gql: GraphQLClient, http: httpx.AsyncClient, data: bytes
) -> None:
    # given
    assert HTML in data
    path, thumbnail_path = await _uploaded(gql, http, data)

    # when
    image = await http.get(path)
    thumbnail = await http.get(thumbnail_path)

    # then
    assert image.status_code == 200
    assert image.content == data
    assert image.headers["content-type"] == "image/png"
    _assert_guarded(image)
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/webp"
    _assert_guarded(thumbnail)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # served from disk either way
async def test_not_modified_and_head_answers_carry_the_same_guards(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given
    path, _ = await _uploaded(gql, http, _html_after_the_end())
    etag = (await http.get(path)).headers["etag"]

    # when
    not_modified = await http.get(path, headers={"If-None-Match": etag})
    head = await http.head(path)
    head_not_modified = await http.head(path, headers={"If-None-Match": etag})

    # then
    assert not_modified.status_code == 304
    assert head.status_code == 200
    assert head_not_modified.status_code == 304
    for response in (not_modified, head, head_not_modified):
        _assert_guarded(response)


@pytest.mark.parametrize(
    "path", ["/media/ab/ab" + "0" * 62 + ".png", "/media/storyframe.db", "/media/"]
)
@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)  # served from disk either way
async def test_not_found_answers_carry_the_same_guards(
    anonymous_http: httpx.AsyncClient, path: str
) -> None:
    # when
    response = await anonymous_http.get(path)
    head = await anonymous_http.head(path)

    # then
    assert response.status_code == 404
    assert head.status_code == 404
    _assert_guarded(response)
    _assert_guarded(head)
