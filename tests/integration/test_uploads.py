"""`uploadImages`: real multipart requests against the real app, both databases, both storages."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image as PILImage
from starlette.applications import Starlette

from storyframe.runtime import Runtime
from storyframe.schema.ids import encode_id
from storyframe.settings import Settings
from tests.support.clients import GraphQLClient, client_of
from tests.support.fake_cloudinary import fake_cloudinary_fixture  # noqa: F401
from tests.support.ids import unknown_id
from tests.support.images import image_bytes, png_claiming, sha256
from tests.support.scenes import seed_frame, state
from tests.support.seeds import add_image
from tests.support.sql import dump
from tests.support.uploading import (
    File,
    Stack,
    image_file,
    images_in,
    media_files,
    originals,
    post_upload,
    stack_fixture,  # noqa: F401
    stack_on,
    upload,
    upload_ok,
)

OTHER_PASSWORD = "another long and quiet river"
FORMATS = [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]


async def _targets(gql: GraphQLClient) -> dict[str, str]:
    video, frame = await seed_frame(gql, "Dawn")
    return {
        "frame": frame,
        "context": video.context_id,
        "mainChat": video.main_chat_id,
        "gallery": video.project_id,
    }


@pytest.mark.parametrize("place", ["frame", "context", "mainChat", "gallery"])
async def test_an_uploaded_image_appears_in_the_place_and_its_url_serves_its_bytes(
    stack: Stack, place: str
) -> None:
    # given
    target = (await _targets(stack.gql))[place]
    data = image_bytes("PNG", (10, 120, 200), (80, 50))

    # when
    (image,) = await upload_ok(stack.http, target, [File("sky.png", data)])

    # then
    assert (image["width"], image["height"]) == (80, 50)
    assert image["contentType"] == "image/png"
    assert image["byteSize"] == len(data)
    assert image["message"] is None
    assert target in {p["id"] for p in image["appearsIn"]}
    assert [i["id"] for i in await images_in(stack.gql, target)] == [image["id"]]
    assert image["url"].startswith(("https://", "http://"))
    if stack.backend == "local":
        assert image["url"].startswith("https://media.storyframe.test/media/")
    response = await stack.fetch(image["url"])
    assert response.status_code == 200
    assert response.content == data


@pytest.mark.parametrize(("fmt", "content_type"), FORMATS)
async def test_png_jpeg_and_webp_are_accepted(stack: Stack, fmt: str, content_type: str) -> None:
    # given
    target = (await _targets(stack.gql))["frame"]
    data = image_bytes(fmt, (30, 160, 60), (33, 21))

    # when
    (image,) = await upload_ok(stack.http, target, [File(f"a.{fmt.lower()}", data, content_type)])

    # then
    assert (image["width"], image["height"], image["contentType"]) == (33, 21, content_type)
    assert image["byteSize"] == len(data)
    assert (await stack.fetch(image["url"])).content == data


async def test_several_files_upload_in_order(stack: Stack) -> None:
    # given
    target = (await _targets(stack.gql))["gallery"]
    files = [image_file(f"{i}.png", color=(i * 40, 0, 0), size=(10 + i, 10)) for i in range(3)]

    # when
    images = await upload_ok(stack.http, target, files)

    # then
    assert [image["width"] for image in images] == [10, 11, 12]
    for image, file in zip(images, files, strict=True):
        assert (await stack.fetch(image["url"])).content == file.data
    assert len(stack.blobs()) == 3


async def test_the_thumbnail_url_serves_a_webp(gql: GraphQLClient, http: httpx.AsyncClient) -> None:
    # given
    target = (await _targets(gql))["frame"]

    # when
    (image,) = await upload_ok(http, target, [image_file("big.png", size=(1200, 600))])

    # then
    response = await http.get(httpx.URL(image["thumbnailUrl"]).path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    with PILImage.open(io.BytesIO(response.content)) as thumbnail:
        assert thumbnail.format == "WEBP"
        assert max(thumbnail.size) == 512


async def test_urls_are_absolute_from_the_default_public_url(
    gql: GraphQLClient, http: httpx.AsyncClient, settings: Settings
) -> None:
    # given
    target = (await _targets(gql))["gallery"]
    data = image_bytes()

    # when
    (image,) = await upload_ok(http, target, [File("a.png", data)])

    # then
    assert (
        image["url"]
        == f"{settings.resolved_public_url}/media/{sha256(data)[:2]}/{sha256(data)}.png"
    )


# --- refusals -------------------------------------------------------------------------------


async def _refused(stack: Stack, target: str, files: list[File], code: str) -> dict[str, Any]:
    """Upload, expect a single user error with `code`, and prove nothing changed."""
    before_rows = await dump(stack.runtime.engine)
    before_files = stack.everything_stored()
    payload = await upload(stack.http, target, files)
    assert payload["images"] is None
    (error,) = payload["userErrors"]
    assert error["code"] == code, error
    assert await dump(stack.runtime.engine) == before_rows
    assert stack.everything_stored() == before_files
    result: dict[str, Any] = error
    return result


async def test_a_text_file_named_png_is_refused(stack: Stack) -> None:
    # given
    target = (await _targets(stack.gql))["frame"]

    # when
    error = await _refused(
        stack, target, [File("notes.png", b"just some words\n" * 10)], "UNSUPPORTED_TYPE"
    )

    # then
    assert "notes.png" in error["message"]
    assert error["field"] == ["files", "0"]


async def test_a_truncated_png_is_refused(stack: Stack) -> None:
    # given
    target = (await _targets(stack.gql))["context"]
    noisy = PILImage.effect_noise((300, 300), 64).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    data = buffer.getvalue()

    # when
    error = await _refused(
        stack, target, [File("cut.png", data[: len(data) // 2])], "CORRUPT_IMAGE"
    )

    # then
    assert "cut.png" in error["message"]


async def test_a_pixel_bomb_is_refused(stack: Stack) -> None:
    # given
    target = (await _targets(stack.gql))["mainChat"]

    # when
    error = await _refused(
        stack, target, [File("bomb.png", png_claiming(100_000, 100_000))], "TOO_LARGE"
    )

    # then
    assert "bomb.png" in error["message"]


async def test_an_image_over_the_pixel_limit_is_refused(settings: Settings) -> None:
    # given
    async with stack_on(settings, max_image_pixels=1000) as stack:
        target = (await _targets(stack.gql))["frame"]

        # when
        wide = image_file("wide.png", size=(100, 11))
        error = await _refused(stack, target, [wide], "TOO_LARGE")

    # then
    assert "wide.png" in error["message"]
    assert media_files(settings.media_dir) == []


async def test_an_oversized_file_is_refused(settings: Settings) -> None:
    # given
    noisy = PILImage.effect_noise((100, 100), 64).convert("RGB")
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 2048
    async with stack_on(settings, max_image_bytes=2048) as stack:
        target = (await _targets(stack.gql))["gallery"]

        # when
        error = await _refused(stack, target, [File("huge.png", buffer.getvalue())], "TOO_LARGE")

    # then
    assert "huge.png" in error["message"]
    assert media_files(settings.media_dir) == []


async def test_too_many_files_are_refused(settings: Settings) -> None:
    # given
    async with stack_on(settings, max_upload_files=2) as stack:
        target = (await _targets(stack.gql))["frame"]
        files = [image_file(f"{i}.png", color=(i, i, i)) for i in range(3)]

        # when
        error = await _refused(stack, target, files, "INVALID")

    # then
    assert error["field"] == ["files"]
    assert media_files(settings.media_dir) == []


async def test_zero_files_are_refused(stack: Stack) -> None:
    # given
    target = (await _targets(stack.gql))["frame"]

    # when
    error = await _refused(stack, target, [], "INVALID")

    # then
    assert error["field"] == ["files"]


async def test_one_bad_file_among_good_ones_stores_none(stack: Stack) -> None:
    # given
    target = (await _targets(stack.gql))["gallery"]
    files = [
        image_file("first.png", color=(1, 1, 1)),
        File("second.png", b"%PDF-1.7 not an image"),
        image_file("third.jpg", "JPEG", color=(3, 3, 3)),
    ]

    # when
    error = await _refused(stack, target, files, "UNSUPPORTED_TYPE")

    # then
    assert "second.png" in error["message"]
    assert error["field"] == ["files", "1"]
    assert stack.blobs() == []


async def test_a_multipart_request_without_the_csrf_header_is_refused(
    stack: Stack,
) -> None:
    # given
    target = (await _targets(stack.gql))["frame"]
    before = await state(stack.gql)

    # when
    response = await post_upload(stack.http, target, [image_file("a.png")], csrf=False)

    # then
    assert response.status_code == 400
    assert "CSRF_HEADER_MISSING" in response.text
    assert await state(stack.gql) == before
    assert stack.everything_stored() == []


@pytest.mark.parametrize("which", ["wrongType", "unknown", "malformed"])
async def test_a_bad_target_is_a_user_error(stack: Stack, which: str) -> None:
    # given
    targets = await _targets(stack.gql)
    image = await add_image(stack.seeds, targets["frame"])
    target = {"wrongType": image, "unknown": unknown_id("Frame"), "malformed": "nope"}[which]
    before = await dump(stack.runtime.engine)

    # when
    payload = await upload(stack.http, target, [image_file("a.png")])

    # then
    (error,) = payload["userErrors"]
    assert error["field"] == ["targetId"]
    assert error["code"] in {"WRONG_TYPE", "NOT_FOUND", "INVALID_ID"}
    assert await dump(stack.runtime.engine) == before
    assert stack.everything_stored() == []


@pytest.mark.parametrize("kind", ["Frame", "Context", "MainChat", "Project"])
async def test_a_target_beyond_the_id_range_is_not_found(
    runtime: Runtime, gql: GraphQLClient, http: httpx.AsyncClient, settings: Settings, kind: str
) -> None:
    # given: an ID no row's id can reach (ids are 32-bit on PostgreSQL)
    await _targets(gql)
    before = await dump(runtime.engine)

    # when
    payload = await upload(http, encode_id(kind, 2**31), [image_file("a.png")])

    # then
    (error,) = payload["userErrors"]
    assert (error["field"], error["code"]) == (["targetId"], "NOT_FOUND")
    assert await dump(runtime.engine) == before
    assert media_files(settings.media_dir) == []


async def test_someone_elses_place_is_not_found(
    app: Starlette, runtime: Runtime, gql: GraphQLClient, settings: Settings
) -> None:
    # given
    target = (await _targets(gql))["frame"]
    stranger = await runtime.accounts.sign_up("stranger@storyframe.test", OTHER_PASSWORD, "tests")
    before = await dump(runtime.engine)

    # when
    async with client_of(app, stranger.token) as theirs:
        payload = await upload(theirs.http, target, [image_file("a.png")])

    # then
    (error,) = payload["userErrors"]
    assert (error["field"], error["code"]) == (["targetId"], "NOT_FOUND")
    assert await dump(runtime.engine) == before
    assert media_files(settings.media_dir) == []


async def test_the_same_bytes_twice_are_two_images_and_one_file(stack: Stack) -> None:
    # given
    targets = await _targets(stack.gql)
    data = image_bytes(color=(9, 99, 199))

    # when
    (first,) = await upload_ok(stack.http, targets["frame"], [File("a.png", data)])
    (second,) = await upload_ok(stack.http, targets["gallery"], [File("b.png", data)])
    (third, fourth) = await upload_ok(
        stack.http, targets["context"], [File("c.png", data), File("d.png", data)]
    )

    # then
    assert len({first["id"], second["id"], third["id"], fourth["id"]}) == 4
    assert len(stack.blobs()) == 1
    if stack.backend == "local":
        assert originals(stack.runtime.settings.media_dir) == [
            f"{sha256(data)[:2]}/{sha256(data)}.png"
        ]
    assert (await stack.fetch(fourth["url"])).content == data


async def test_uploads_count_in_the_project(gql: GraphQLClient, http: httpx.AsyncClient) -> None:
    # given
    targets = await _targets(gql)

    # when
    await upload_ok(
        http, targets["gallery"], [image_file("a.png"), image_file("b.png", color=(0, 0, 1))]
    )

    # then
    (project,) = (await state(gql))["projects"]["nodes"]
    assert project["galleryCount"] == 2
    assert project["imageCount"] == 2


async def test_a_multipart_body_over_the_limit_is_refused_before_graphql(
    settings: Settings,
) -> None:
    # given
    async with stack_on(
        settings, max_image_bytes=1024, max_upload_files=1, max_body_bytes=1024
    ) as stack:
        target = (await _targets(stack.gql))["frame"]
        before = await dump(stack.runtime.engine)

        # when
        response = await post_upload(stack.http, target, [File("big.png", b"\0" * 4096)])

        # then
        assert response.status_code == 413
        assert "REQUEST_TOO_LARGE" in response.text
        assert await dump(stack.runtime.engine) == before
        assert media_files(settings.media_dir) == []
