"""Generated images and references go through either blob storage: local disk or Cloudinary."""

from __future__ import annotations

from tests.fake_cloudinary import fake_cloudinary_fixture  # noqa: F401
from tests.integration.generating import generate_ok
from tests.integration.helpers import create_frame, seed_video
from tests.integration.uploading import Stack, stack_fixture  # noqa: F401

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
