"""What the domain needs from the outside world. The app wires concrete implementations."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from sqlmodel import SQLModel

from storyframe.db.tables import (
    Context,
    Export,
    Frame,
    Generation,
    Image,
    MainChat,
    Message,
    Project,
    User,
    Video,
)
from storyframe.domain.exports import ExportRows
from storyframe.domain.pages import PageRequest
from storyframe.domain.places import Place, PlaceOwner

Row = TypeVar("Row", bound=SQLModel)


@dataclass(slots=True)
class Doomed:
    """Row ids a deletion removes, gathered before anything is deleted so they can be counted."""

    projects: set[int] = field(default_factory=set)
    videos: set[int] = field(default_factory=set)
    frames: set[int] = field(default_factory=set)
    main_chats: set[int] = field(default_factory=set)
    messages: set[int] = field(default_factory=set)
    images: set[int] = field(default_factory=set)
    storage_keys: set[str] = field(default_factory=set)


class Repository(Protocol):
    """The write side, inside one transaction, seeing only what belongs to `owner_id`."""

    @property
    def owner_id(self) -> int:
        """The user whose rows this repository reads and writes."""
        ...

    async def get(self, model: type[Row], id: int) -> Row | None: ...
    async def add(self, row: SQLModel) -> None:
        """Insert the row and assign its id."""

    async def save(self, row: SQLModel) -> None:
        """Write the changes made to a loaded row."""

    async def lock_video(self, video_id: int) -> None:
        """Serialise changes to one video's frames until the transaction ends."""

    async def lock_owner(self, owner: PlaceOwner) -> None:
        """Serialise what goes into the places of one video (its frames and chats), or of one
        project's gallery, with their deletion, until the transaction ends."""

    async def lock_images(self, image_ids: Collection[int], *, exclusive: bool) -> set[int]:
        """Lock the owner's images among `image_ids`, in id order, until the transaction ends,
        and return the ids found. Shared by a write that will refer to them (a placement, an
        attachment, a selection, a copy sharing the bytes), so their deletion waits for it;
        exclusive by their deletion, so such a write waits and then finds them gone."""

    async def lock_image_places(self, image_id: int) -> bool:
        """Serialise what adds the owner's image to more places, until the transaction ends;
        False when there is no such image. Stronger than `lock_images(exclusive=False)`: it
        waits for another such lock, while a write that only refers to the image does not."""
        ...

    async def frames_of_video(self, video_id: int) -> list[Frame]:
        """The video's frames in order."""

    async def set_frame_orders(self, video_id: int, frames: Sequence[Frame]) -> None:
        """Renumber the video's frames 0..n-1 in the given sequence."""

    async def owner_of(self, place: Place) -> PlaceOwner | None: ...
    async def has_placement(self, image_id: int, place: Place) -> bool: ...
    async def count_placements(self, image_id: int) -> int:
        """How many places the image appears in."""
        ...

    async def add_placement(self, image_id: int, place: Place) -> None: ...
    async def remove_placement(self, image_id: int, place: Place) -> bool: ...
    async def remove_placements_in_project(self, image_id: int, project_id: int) -> None:
        """Take the image out of every place of the project, and out of its frames' selections."""

    async def unselect_image(self, image_id: int, frame_id: int) -> None:
        """Clear the frame's selection if it is the image."""

    async def add_attachments(self, message_id: int, image_ids: Sequence[int]) -> None: ...
    async def context_of_video(self, video_id: int) -> Context | None: ...
    async def queue_generation(self, generation: Generation) -> None:
        """Insert a QUEUED generation. Where the job queue lives in the same database, it hears
        of the generation in the same transaction: committed together, or not at all."""

    async def start_generation(self, generation_id: int, now: datetime) -> bool:
        """Mark a QUEUED generation RUNNING: started `now` (unless it had started before and was
        handed back), alive `now`, one more attempt. False (and nothing changed) when it is not
        there or not QUEUED. Atomic: of two concurrent calls, one gets True."""
        ...

    async def generation_for_key(self, key: str) -> Generation | None:
        """The owner's generation asked with this idempotency key, if any. Two transactions
        asking for one owner's keys take turns until the first ends."""
        ...

    async def attachments_of(self, message_id: int) -> list[Image]:
        """The images the message attached, in the order they were attached."""
        ...

    async def video_ids_of_project(self, project_id: int) -> set[int]: ...
    async def frame_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]: ...
    async def main_chat_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]: ...
    async def message_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]: ...
    async def message_ids_of_chat(self, chat: Place) -> set[int]: ...
    async def image_ids_of_project(self, project_id: int) -> set[int]: ...
    async def image_ids_of_videos(self, video_ids: Iterable[int]) -> set[int]: ...
    async def image_ids_of_messages(self, message_ids: Iterable[int]) -> set[int]: ...
    async def storage_keys_of(self, image_ids: Iterable[int]) -> set[str]: ...
    async def delete(self, doomed: Doomed) -> None:
        """Delete every row named, with what hangs off them (placements, attachments)."""

    async def delete_row(self, row: SQLModel) -> None:
        """Delete one row (what hangs off it cascades)."""

    @property
    def exports(self) -> ExportRows:
        """The owner's exports, in this transaction."""
        ...

    @property
    def runs(self) -> RunRows:
        """The owner's diagnostics runs, in this transaction."""
        ...

    async def commit(self) -> None: ...


class RunRows(Protocol):
    async def unfinished(self) -> int:
        """How many of the owner's diagnostics runs are queued or running."""
        ...

    async def start(self, run_id: int, now: datetime) -> bool:
        """QUEUED → RUNNING, counting the attempt; False when it is not QUEUED."""
        ...


class UnitOfWork(Protocol):
    def __call__(self) -> AbstractAsyncContextManager[Repository]:
        """Open a write transaction; it rolls back unless committed."""
        ...


@dataclass(frozen=True, slots=True)
class GenerationScope:
    """The generations of one video, or of every video of one project."""

    id: int
    by_project: bool = False


class Reader(Protocol):
    """Batched reads for the API: one statement per call, whatever the number of keys."""

    async def get_many(self, model: type[Row], ids: Sequence[int]) -> Mapping[int, Row]: ...
    async def projects(self, page: PageRequest) -> list[Project]: ...
    async def count_projects(self) -> int: ...
    async def videos_of_projects(
        self, project_ids: Sequence[int], page: PageRequest
    ) -> Mapping[int, list[Video]]: ...
    async def contexts_of_videos(self, video_ids: Sequence[int]) -> Mapping[int, Context]: ...
    async def frames_of_videos(self, video_ids: Sequence[int]) -> Mapping[int, list[Frame]]: ...
    async def main_chats_of_videos(
        self, video_ids: Sequence[int]
    ) -> Mapping[int, list[MainChat]]: ...
    async def messages_of_chats(
        self, chats: Sequence[Place], page: PageRequest
    ) -> Mapping[Place, list[Message]]: ...
    async def images_of_messages(self, message_ids: Sequence[int]) -> Mapping[int, list[Image]]: ...
    async def generations_of_messages(
        self, message_ids: Sequence[int]
    ) -> Mapping[int, Generation]: ...
    async def generations_of_video(
        self, video_id: int, statuses: Sequence[str]
    ) -> list[Generation]:
        """The owner's generations of the video in one of `statuses`, oldest first."""
        ...

    async def generations(
        self, scope: GenerationScope, statuses: Sequence[str], page: PageRequest
    ) -> list[Generation]:
        """A page of the owner's generations of a video or project in one of `statuses`,
        newest first."""
        ...

    async def count_generations(self, scope: GenerationScope, statuses: Sequence[str]) -> int: ...
    async def exports(self, video_id: int, page: PageRequest) -> list[Export]:
        """The video's exports, newest first."""
        ...

    async def count_exports(self, video_id: int) -> int: ...
    async def attachments_of_messages(
        self, message_ids: Sequence[int]
    ) -> Mapping[int, list[Image]]: ...
    async def images_of_places(
        self, places: Sequence[Place], page: PageRequest
    ) -> Mapping[Place, list[Image]]: ...
    async def images_of_projects(
        self, keys: Sequence[tuple[int, int | None]], page: PageRequest
    ) -> Mapping[tuple[int, int | None], list[Image]]:
        """Images of each (project, video or None for all) key."""

    async def places_of_images(self, image_ids: Sequence[int]) -> Mapping[int, list[Place]]: ...
    async def count_videos(self, project_ids: Sequence[int]) -> Mapping[int, int]: ...
    async def count_project_images(
        self, keys: Sequence[tuple[int, int | None]]
    ) -> Mapping[tuple[int, int | None], int]: ...
    async def count_frames(self, video_ids: Sequence[int]) -> Mapping[int, int]: ...
    async def count_messages(self, chats: Sequence[Place]) -> Mapping[Place, int]: ...
    async def count_place_images(self, places: Sequence[Place]) -> Mapping[Place, int]: ...
    async def ping(self) -> None:
        """Raise unless the database answers."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The user a request acts for, and the token it came with."""

    user_id: int
    token_id: int
    email: str
    created_at: datetime


class AccountStore(Protocol):
    """Users and their access tokens; each call is its own transaction."""

    async def user(self, user_id: int) -> User | None: ...
    async def user_by_email(self, email: str) -> User | None: ...
    async def add_user(self, email: str, password_hash: str) -> User | None:
        """The new user, or None when the e-mail is already taken."""

    async def set_password(self, user_id: int, password_hash: str) -> None: ...
    async def add_token(self, user_id: int, token_hash: str, expires_at: datetime) -> None: ...
    async def token_owner(self, token_hash: str, now: datetime) -> Viewer | None:
        """The user of a live (unrevoked, unexpired) token, with the token's id."""

    async def revoke_token(self, token_id: int, now: datetime) -> None: ...
    async def revoke_tokens_except(
        self, user_id: int, keep_token_id: int, now: datetime
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Blob:
    """Bytes held by blob storage, under a key derived from their SHA-256."""

    key: str
    url: str
    thumbnail_url: str
    byte_size: int
    checksum: str


IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
"""The image types stored, and the file extension each takes."""


class BlobStorage(Protocol):
    """Where image bytes live. Keys come from content hashes, so identical bytes are one blob."""

    async def put(
        self, source: Path, *, checksum: str, content_type: str, thumbnail: bytes
    ) -> Blob:
        """Store the file at `source` (and its WebP thumbnail) under a key made from `checksum`;
        storing bytes that are already there only returns their blob."""
        ...

    async def put_file(self, source: Path, *, checksum: str, extension: str) -> Blob:
        """Store a file that is not an image (an export: `mp4`, `pdf`, `zip`, `vtt`) under a key
        made from `checksum`, with no thumbnail (its `thumbnail_url` is its `url`)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob (an image with its thumbnail, or a file); nothing happens when the
        key is unknown."""

    async def keys(self) -> list[str]:
        """Every key held."""
        ...

    async def exists(self, key: str) -> bool: ...
    async def read(self, key: str, *, url: str | None = None) -> bytes:
        """The bytes of the blob; raises FileNotFoundError when the key is unknown. `url` is the
        blob's URL as its image row keeps it: a remote storage may fetch it without a lookup."""
        ...


class StaleGenerations(Protocol):
    """Generations across every owner that no process is working on any more."""

    async def interrupt(
        self, unchanged_since: datetime, now: datetime, errors: list[dict[str, object]]
    ) -> list[tuple[int, int, int | None]]:
        """Record as FAILED, with `errors`, every RUNNING generation whose process has not been
        heard of (heartbeat, start) since `unchanged_since`; their ids, with their video's and
        owner's. QUEUED ones are left to wait, however long the queue."""
        ...


class BlobIndex(Protocol):
    """Which storage keys the database still references, across every user."""

    async def keys_in_use(self, keys: Collection[str]) -> set[str]: ...
    async def all_keys(self) -> set[str]: ...
    async def images_with_key(self, keys: Collection[str]) -> list[int]:
        """Ids of the images whose blob has one of these keys."""
        ...


class FileReleaser(Protocol):
    async def release(self, keys: Collection[str]) -> None:
        """Delete the blobs of `keys` that no image references any more. Call it after the
        deletion committed: a failed transaction must not lose a file still referenced."""
