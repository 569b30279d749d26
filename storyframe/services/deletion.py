"""Gathering what a deletion takes with it, so it can be counted and reported."""

from __future__ import annotations

from dataclasses import dataclass

from storyframe.domain.places import Place
from storyframe.domain.ports import Doomed, Repository


@dataclass(frozen=True, slots=True)
class Deleted:
    """How many rows of each kind a delete or clear removed."""

    videos: int = 0
    frames: int = 0
    messages: int = 0
    images: int = 0

    @classmethod
    def of(cls, doomed: Doomed) -> Deleted:
        return cls(len(doomed.videos), len(doomed.frames), len(doomed.messages), len(doomed.images))


async def doom_files(repo: Repository, doomed: Doomed) -> None:
    """Note the blobs of the doomed images, to release once the deletion has committed."""
    doomed.storage_keys |= await repo.storage_keys_of(doomed.images)


async def doom_videos(repo: Repository, doomed: Doomed, video_ids: set[int]) -> None:
    # Locked first, in one order: what is being added to them is in, or waits until they're gone.
    for video_id in sorted(video_ids):
        await repo.lock_video(video_id)
    doomed.videos |= video_ids
    doomed.frames |= await repo.frame_ids_of_videos(video_ids)
    doomed.main_chats |= await repo.main_chat_ids_of_videos(video_ids)
    doomed.messages |= await repo.message_ids_of_videos(video_ids)
    doomed.images |= await repo.image_ids_of_videos(video_ids)
    doomed.images |= await repo.image_ids_of_messages(doomed.messages)
    # The videos' exports go with them (in the database, by cascade), and so do their files.
    doomed.storage_keys |= await repo.exports.file_keys_of_videos(video_ids)


async def doom_chat_history(repo: Repository, doomed: Doomed, chat: Place) -> None:
    owner = await repo.owner_of(chat)
    if owner is not None:
        await repo.lock_owner(owner)  # a generation finishing in the chat is in, or waits
    messages = await repo.message_ids_of_chat(chat)
    doomed.messages |= messages
    doomed.images |= await repo.image_ids_of_messages(messages)
