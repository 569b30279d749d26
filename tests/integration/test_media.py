"""GET/HEAD /media/{key}: locally stored images, served immutable and streamed from disk."""

from __future__ import annotations

import httpx
import pytest

from storyframe.settings import Settings
from tests.support.clients import GraphQLClient
from tests.support.images import image_bytes, sha256
from tests.support.scenes import seed_video
from tests.support.uploading import File, upload_ok

IMMUTABLE = "public, max-age=31536000, immutable"


async def _uploaded(
    gql: GraphQLClient, http: httpx.AsyncClient, fmt: str = "PNG", content_type: str = "image/png"
) -> tuple[str, str, bytes]:
    """(path of the image, path of its thumbnail, its bytes)."""
    video = await seed_video(gql)
    data = image_bytes(fmt, (12, 34, 56), (40, 20))
    (image,) = await upload_ok(http, video.project_id, [File("a", data, content_type)])
    return httpx.URL(image["url"]).path, httpx.URL(image["thumbnailUrl"]).path, data


@pytest.mark.parametrize(
    ("fmt", "content_type", "extension"),
    [("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg"), ("WEBP", "image/webp", "webp")],
)
async def test_an_image_is_served_with_its_type_a_strong_etag_and_immutable_caching(
    gql: GraphQLClient, http: httpx.AsyncClient, fmt: str, content_type: str, extension: str
) -> None:
    # given
    path, _, data = await _uploaded(gql, http, fmt, content_type)

    # when
    response = await http.get(path)

    # then
    assert path == f"/media/{sha256(data)[:2]}/{sha256(data)}.{extension}"
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == content_type
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["cache-control"] == IMMUTABLE
    etag = response.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert not etag.startswith("W/")


async def test_a_matching_if_none_match_answers_304(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given
    path, _, _ = await _uploaded(gql, http)
    etag = (await http.get(path)).headers["etag"]

    # when
    exact = await http.get(path, headers={"If-None-Match": etag})
    among_others = await http.get(path, headers={"If-None-Match": f'"other", {etag}'})
    weak = await http.get(path, headers={"If-None-Match": f"W/{etag}"})
    other = await http.get(path, headers={"If-None-Match": '"something-else"'})

    # then
    for response in (exact, among_others, weak):
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == IMMUTABLE
    assert other.status_code == 200


async def test_head_answers_the_headers_without_the_body(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    # given
    path, _, data = await _uploaded(gql, http)

    # when
    response = await http.head(path)

    # then
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["etag"] == (await http.get(path)).headers["etag"]


async def test_a_thumbnail_has_its_own_etag(gql: GraphQLClient, http: httpx.AsyncClient) -> None:
    # given
    path, thumbnail_path, _ = await _uploaded(gql, http)

    # when
    image = await http.get(path)
    thumbnail = await http.get(thumbnail_path)

    # then
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/webp"
    assert thumbnail.headers["cache-control"] == IMMUTABLE
    assert thumbnail.headers["etag"] != image.headers["etag"]


async def test_media_needs_no_token(
    gql: GraphQLClient, http: httpx.AsyncClient, anonymous_http: httpx.AsyncClient
) -> None:
    # given
    path, _, data = await _uploaded(gql, http)

    # when
    response = await anonymous_http.get(path)

    # then
    assert response.status_code == 200
    assert response.content == data


UNKNOWN = "ab/ab" + "0" * 62


@pytest.mark.parametrize(
    "path",
    [
        f"/media/{UNKNOWN}.png",
        f"/media/{UNKNOWN}.thumb.webp",
        f"/media/{UNKNOWN}.gif",
        "/media/",
        "/media/storyframe.db",
        "/media/../storyframe.db",
        "/media/%2e%2e/storyframe.db",
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/media/..%2fstoryframe.db",
        "/media/%2fetc%2fpasswd",
        "/media//etc/passwd",
        "/media/ab/../../storyframe.db",
        "/media/ab/%2e%2e/%2e%2e/storyframe.db",
        f"/media/{UNKNOWN[:4]}",
        f"/media/{UNKNOWN.upper()}.png",
    ],
)
async def test_anything_but_a_stored_key_is_not_found(
    gql: GraphQLClient, http: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    # given
    await _uploaded(gql, http)
    (settings.data_dir / "storyframe.db").write_bytes(b"secret")

    # when
    response = await http.get(path)
    head = await http.head(path)

    # then
    assert response.status_code == 404, response.text
    assert b"secret" not in response.content
    assert head.status_code == 404


async def test_a_thumbnail_of_a_stored_image_is_not_found_after_its_deletion(
    gql: GraphQLClient, http: httpx.AsyncClient, settings: Settings
) -> None:
    # given
    path, thumbnail_path, _ = await _uploaded(gql, http)
    (settings.media_dir / thumbnail_path.removeprefix("/media/")).unlink()

    # when
    response = await http.get(thumbnail_path)

    # then
    assert response.status_code == 404
    assert (await http.get(path)).status_code == 200
