"""Images and the places they appear in: adding, copying, moving, removing, deleting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from storyframe.db.tables import Image
from storyframe.domain.errors import DomainError, ErrorCode, LimitReached, NotFound
from storyframe.domain.places import Place, PlaceKind, PlaceOwner
from storyframe.domain.ports import Blob, Doomed, FileReleaser, Repository, UnitOfWork
from storyframe.services.deletion import Deleted, doom_files
from storyframe.services.image_files import Inspected
from storyframe.services.limits import ListLimits
from storyframe.services.rows import found


@dataclass(frozen=True, slots=True)
class StoredImage:
    """What blob storage reports about bytes it holds."""

    url: str
    storage_key: str
    width: int
    height: int
    content_type: str
    byte_size: int
    thumbnail_url: str | None = None
    checksum: str | None = None
    placeholder: bool = False
    slot: int | None = None
    """Its position among the images of the generation that made it."""

    @classmethod
    def of(cls, blob: Blob, facts: Inspected, *, placeholder: bool = False) -> StoredImage:
        """What storage holds of an inspected file it was given."""
        return cls(
            url=blob.url,
            storage_key=blob.key,
            width=facts.width,
            height=facts.height,
            content_type=facts.content_type,
            byte_size=facts.byte_size,
            thumbnail_url=blob.thumbnail_url,
            checksum=facts.checksum,
            placeholder=placeholder,
        )


async def _image(repo: Repository, image_id: int, field: str = "imageId") -> Image:
    return await found(repo, Image, image_id, "image", field)


async def _hold(repo: Repository, image_id: int, field: str = "imageId") -> None:
    """Keep the image from being deleted until the transaction ends (after the place's lock, in
    the order deletions take them); NotFound if it went while this waited."""
    if not await repo.lock_images([image_id], exclusive=False):
        raise NotFound("image", [field])


async def _owner(repo: Repository, place: Place, field: str) -> PlaceOwner:
    owner = await repo.owner_of(place)
    if owner is None:
        raise NotFound(place.label, [field])
    return owner


async def _locked_owner(repo: Repository, place: Place, field: str) -> PlaceOwner:
    """The owner of a place images go into, locked against the place's deletion until the
    transaction ends; NotFound when the place is gone, even while this waited for the lock."""
    await repo.lock_owner(await _owner(repo, place, field))
    return await _owner(repo, place, field)


async def _make_room(repo: Repository, image_id: int, target: Place, most: int) -> None:
    """Check that the image may appear in the target too: it is already there, or it appears
    in fewer than `most` places. Until the transaction ends, other additions of the image to
    places wait, so they count this one; NotFound if the image went while this waited."""
    if not await repo.lock_image_places(image_id):
        raise NotFound("image", ["imageId"])
    if await repo.has_placement(image_id, target):
        return
    if await repo.count_placements(image_id) >= most:
        raise LimitReached(f"an image appears in at most {most} places", ["imageId"])


async def _take_out(repo: Repository, image_id: int, place: Place, field: str) -> None:
    if not await repo.remove_placement(image_id, place):
        raise DomainError(
            ErrorCode.NOT_IN_PLACE, f"the image is not in this {place.label}", [field]
        )
    if place.kind is PlaceKind.FRAME:
        await repo.unselect_image(image_id, place.id)


async def add_images(
    repo: Repository,
    owner: PlaceOwner,
    place: Place,
    stored: Sequence[StoredImage],
    message_id: int | None = None,
) -> list[Image]:
    """Record stored bytes as images of the owner's project, appearing in the place; the caller
    commits. Raises NotFound when the place has gone (deleted while this waited for its lock)."""
    await repo.lock_owner(owner)
    if await repo.owner_of(place) is None:
        raise NotFound(place.label)
    return await place_images(repo, owner, place, stored, message_id)


async def place_images(
    repo: Repository,
    owner: PlaceOwner,
    place: Place,
    stored: Sequence[StoredImage],
    message_id: int | None = None,
) -> list[Image]:
    """`add_images` for a caller that holds the owner's lock and has found the place since."""
    images: list[Image] = []
    for item in stored:
        image = Image(
            project_id=owner.project_id,
            video_id=owner.video_id,
            message_id=message_id,
            **asdict(item),  # its fields are the image's columns of the same names
        )
        await repo.add(image)
        assert image.id is not None
        await repo.add_placement(image.id, place)
        images.append(image)
    return images


class ImageService:
    def __init__(self, uow: UnitOfWork, files: FileReleaser, limits: ListLimits) -> None:
        self._uow = uow
        self._files = files
        self._limits = limits

    async def add_many(self, place: Place, stored: Sequence[StoredImage]) -> list[Image]:
        """Record several stored images (uploads) in the place at once: all of them or none."""
        async with self._uow() as repo:
            owner = await _owner(repo, place, "targetId")
            images = await add_images(repo, owner, place, stored)
            await repo.commit()
        return images

    async def check_place(self, place: Place) -> None:
        """Raise NotFound unless the place exists and is the owner's."""
        async with self._uow() as repo:
            await _owner(repo, place, "targetId")

    async def copy(self, image_id: int, target: Place) -> Image:
        """Make the image appear in the target too, unless it appears in as many places as it
        may. Across projects the copy is a new image of the target project sharing the stored
        bytes, so each project owns what it shows (and the new image has that one place)."""
        async with self._uow() as repo:
            image = await _image(repo, image_id)
            owner = await _locked_owner(repo, target, "targetId")
            if owner.project_id == image.project_id:
                await _make_room(repo, image_id, target, self._limits.image_places)
            else:
                await _hold(repo, image_id)
                image = Image(
                    **image.model_dump(exclude={"id", "created_at", "message_id"}),
                )
                image.project_id, image.video_id = owner.project_id, owner.video_id
                await repo.add(image)
            assert image.id is not None
            await repo.add_placement(image.id, target)
            await repo.commit()
        return image

    async def move(self, image_id: int, source: Place, target: Place) -> Image:
        """Take the image out of the source and into the target. Moving into another project
        hands the image over: it leaves every place of its old project and its producing
        message, and belongs to the target project from then on. Either way the image appears
        in no more places than before, so a move is never refused for their number."""
        if source == target:
            raise DomainError(ErrorCode.SAME_PLACE, "source and target are the same", ["targetId"])
        async with self._uow() as repo:
            image = await _image(repo, image_id)
            await _owner(repo, source, "sourceId")
            owner = await _locked_owner(repo, target, "targetId")
            await _hold(repo, image_id)
            await _take_out(repo, image_id, source, "sourceId")
            if owner.project_id != image.project_id:
                await repo.remove_placements_in_project(image_id, image.project_id)
                image.project_id, image.video_id = owner.project_id, owner.video_id
                image.message_id = None
                await repo.save(image)
            await repo.add_placement(image_id, target)
            await repo.commit()
        return image

    async def remove(self, image_id: int, source: Place) -> Image:
        """Take the image out of one place; it stays in its project."""
        async with self._uow() as repo:
            image = await _image(repo, image_id)
            await _owner(repo, source, "sourceId")
            await _take_out(repo, image_id, source, "sourceId")
            await repo.commit()
        return image

    async def delete(self, image_id: int) -> Deleted:
        async with self._uow() as repo:
            await _image(repo, image_id, "id")
            doomed = Doomed(images={image_id})
            await doom_files(repo, doomed)
            await repo.delete(doomed)
            await repo.commit()
        await self._files.release(doomed.storage_keys)
        return Deleted.of(doomed)
