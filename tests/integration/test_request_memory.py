"""What a request read is let go when its response has been sent: reference counting frees it,
where it used to wait, thousands of objects at a time, for the cyclic garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from storyframe.schema.ids import encode_id
from storyframe.services.container import Services
from tests.support.clients import GraphQLClient
from tests.support.images import stored_image
from tests.support.seeds import Seeds, a_storyboard

STORYBOARD = """
query Storyboard($id: ID!) {
  video(id: $id) {
    frames { selectedImage { url } messages(first: 3) { edges { node { images { url } } } } }
  }
}
"""


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _cyclic_garbage_of_one_storyboard(gql: GraphQLClient, video_pk: int) -> int:
    variables = {"id": encode_id("Video", video_pk)}
    await gql.data(STORYBOARD, variables)  # warm: documents parsed and plans made once
    with collector_off():
        data = await gql.data(STORYBOARD, variables)
        garbage = gc.collect()  # what reference counting could not free
    assert data["video"]["frames"]
    return garbage


async def test_a_request_leaves_no_more_cyclic_garbage_for_many_rows_than_for_few(
    gql: GraphQLClient, services: Services, seeds: Seeds
) -> None:
    small = await a_storyboard(services, seeds, 2, messages=3, images=2, stored=stored_image)
    large = await a_storyboard(services, seeds, 30, messages=3, images=2, stored=stored_image)

    few = await _cyclic_garbage_of_one_storyboard(gql, small)
    many = await _cyclic_garbage_of_one_storyboard(gql, large)

    print(f"cyclic garbage of one storyboard: {few} objects for 2 frames, {many} for 30")
    # 28 frames more read 28 frames, 84 messages and 336 images more (with their futures,
    # pages and edges): none of them is left to the collector.
    assert many - few < 50
