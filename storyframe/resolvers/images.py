"""The image mutations: copy, move, remove from a place, delete."""

from __future__ import annotations

import strawberry

from storyframe.db import tables
from storyframe.domain.places import Place
from storyframe.resolvers.mutation import deleting, mutation
from storyframe.resolvers.places import place_of
from storyframe.schema import inputs
from storyframe.schema.ids import decode_pk
from storyframe.schema.images import Image, place_node
from storyframe.schema.payloads import ImagePayload
from storyframe.schema.request_context import Info_


async def _shown(
    info: Info_, row: tables.Image, source: Place | None = None, target: Place | None = None
) -> ImagePayload:
    """The image, and the places it left and went to as they are now."""
    loaders = info.context.loaders
    return ImagePayload(
        image=Image.from_row(row),
        source=await place_node(loaders, source) if source is not None else None,
        target=await place_node(loaders, target) if target is not None else None,
    )


@strawberry.type
class ImageMutation:
    @mutation(
        "Make an image appear in another place too. Into another project, the copy is a new "
        "image of that project sharing the stored file."
    )
    async def copy_image(self, info: Info_, input: inputs.CopyImageInput) -> ImagePayload:
        image = decode_pk(input.image_id, "Image", "imageId")
        target = place_of(input.target_id, "targetId")
        row = await info.context.services.images.copy(image, target)
        return await _shown(info, row, target=target)

    @mutation(
        "Move an image from one place to another. Into another project, the image leaves every "
        "place of its old project and belongs to the new one."
    )
    async def move_image(self, info: Info_, input: inputs.MoveImageInput) -> ImagePayload:
        image = decode_pk(input.image_id, "Image", "imageId")
        source, target = (
            place_of(input.source_id, "sourceId"),
            place_of(input.target_id, "targetId"),
        )
        row = await info.context.services.images.move(image, source, target)
        return await _shown(info, row, source, target)

    @mutation("Take an image out of one place; it stays in its project.")
    async def remove_image(self, info: Info_, input: inputs.RemoveImageInput) -> ImagePayload:
        image = decode_pk(input.image_id, "Image", "imageId")
        source = place_of(input.source_id, "sourceId")
        row = await info.context.services.images.remove(image, source)
        return await _shown(info, row, source=source)

    delete_image = deleting(
        "Image", lambda s: s.images, "Delete an image from everywhere it appears."
    )
