"""Generated images and references go through either blob storage: local disk or Cloudinary."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.support.fake_cloudinary import fake_cloudinary_fixture  # noqa: F401
from tests.support.generating import generate_ok
from tests.support.scenes import create_frame, seed_video
from tests.support.uploading import Stack, stack_fixture  # noqa: F401

TIMES = "\N{MULTIPLICATION SIGN}"


async def test_generated_images_are_stored_and_read_back_as_references(stack: Stack) -> None:
    # given
    video = await seed_video(stack.gql)
    made = await generate_ok(stack.gql, "Context", video.context_id, "the keeper", imageCount=2)
    references = made["message"]["images"]
    frame = await create_frame(stack.gql, video.id, "Shot")

    # when
    payload = await generate_ok(
        stack.gql,
        "Frame",
        frame,
        "the keeper at the window",
        contextImageIds=[image["id"] for image in references],
    )

    # then every image is held by the storage, and fetchable at its URL
    assert len(stack.blobs()) == 3
    for image in [*references, *payload["message"]["images"]]:
        response = await stack.fetch(image["url"])
        assert response.status_code == 200
        assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    # and the references' bytes were read back from it to be described
    description = payload["message"]["finalPrompt"].split("\n\nReference images: ")[1]
    assert f"Image 1: 1024{TIMES}1024 PNG" in description
    assert f"Image 2: 1024{TIMES}1024 PNG" in description
    assert payload["generation"]["errors"] == []


@pytest.mark.parametrize("stack", ["cloudinary"], indirect=True)
async def test_references_are_read_from_cloudinary_by_their_urls(stack: Stack) -> None:
    # given images on Cloudinary
    assert stack.fake is not None
    video = await seed_video(stack.gql)
    made = await generate_ok(stack.gql, "Context", video.context_id, "the keeper", imageCount=2)
    ids = [image["id"] for image in made["message"]["images"]]
    urls = {urlsplit(image["url"]).path for image in made["message"]["images"]}
    stack.fake.requests.clear()

    # when they are used as references and analysed
    payload = await generate_ok(
        stack.gql, "MainChat", video.main_chat_id, "the keeper again", contextImageIds=ids
    )
    analysis = await stack.gql.data(
        """
        mutation($input: AnalyzeImagesInput!) {
          analyzeImages(input: $input) { analysis { text } userErrors { code } }
        }
        """,
        {"input": {"imageIds": ids, "question": "what?"}},
    )

    # then each read was one delivery of the stored URL, without an Admin API lookup
    assert payload["generation"]["errors"] == []
    assert analysis["analyzeImages"]["userErrors"] == []
    gets = [request.path for request in stack.fake.requests if request.method == "GET"]
    assert sorted(gets) == sorted([*urls, *urls])
    assert stack.fake.requests_to("/resources/image/upload") == []
    assert not any("/resources/" in request.path for request in stack.fake.requests)


async def test_a_lost_file_is_reported_not_crashed_on(stack: Stack) -> None:
    # given an image whose stored file has gone
    video = await seed_video(stack.gql)
    made = await generate_ok(stack.gql, "Context", video.context_id, "the keeper")
    image = made["message"]["images"][0]["id"]
    for key in await stack.storage.keys():
        await stack.storage.delete(key)

    # when
    analysis = await stack.gql.data(
        """
        mutation($input: AnalyzeImagesInput!) {
          analyzeImages(input: $input) { analysis { text } userErrors { field code } }
        }
        """,
        {"input": {"imageIds": [image], "question": "what?"}},
    )
    generated = await generate_ok(
        stack.gql, "MainChat", video.main_chat_id, "the keeper", contextImageIds=[image]
    )

    # then
    assert analysis["analyzeImages"] == {
        "analysis": None,
        "userErrors": [{"field": ["imageIds"], "code": "NOT_FOUND"}],
    }
    generation = generated["generation"]
    assert generation["status"] == "SUCCEEDED"
    assert [(e["index"], e["code"]) for e in generation["errors"]] == [(None, "NOT_FOUND")]
    assert generated["message"]["finalPrompt"] == "the keeper"


async def test_reading_an_unknown_key_raises_file_not_found(stack: Stack) -> None:
    # given
    video = await seed_video(stack.gql)
    await generate_ok(stack.gql, "Context", video.context_id, "the keeper")
    (key,) = await stack.storage.keys()
    data = await stack.storage.read(key)
    await stack.storage.delete(key)

    # then
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileNotFoundError):
        await stack.storage.read(key)
