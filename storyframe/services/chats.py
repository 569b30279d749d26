"""Chats (frames, the video's context, main chats): their messages and histories."""

from __future__ import annotations

from collections.abc import Sequence

from storyframe.db.tables import (
    CONTENT_MAX,
    NAME_MAX,
    PROMPT_MAX,
    Context,
    Frame,
    Image,
    MainChat,
    Message,
    Video,
    utcnow,
)
from storyframe.domain.errors import DomainError, ErrorCode, LimitReached, NotFound
from storyframe.domain.places import Place, PlaceKind, PlaceOwner
from storyframe.domain.ports import Doomed, FileReleaser, Repository, UnitOfWork
from storyframe.services.deletion import Deleted, doom_chat_history, doom_files
from storyframe.services.limits import ListLimits
from storyframe.services.rows import edit, found, renamed
from storyframe.services.validation import clean_name

MAX_ATTACHMENTS = 16


class ContextService:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def update(self, context_id: int, content: str) -> Context:
        cleaned = clean_name(content, "content", CONTENT_MAX, allow_blank=True)
        return await edit(self._uow, Context, context_id, "context", content=cleaned)


class MainChatService:
    def __init__(self, uow: UnitOfWork, files: FileReleaser, limits: ListLimits) -> None:
        self._uow = uow
        self._files = files
        self._limits = limits

    async def create(self, video_id: int, name: str) -> MainChat:
        """A new main chat of the video, unless it has as many as it may."""
        cleaned = clean_name(name, "name", NAME_MAX)
        async with self._uow() as repo:
            # Lock first: a video deleted while we waited for its lock is then seen as gone,
            # and main chats another request added meanwhile are counted.
            await repo.lock_video(video_id)
            await found(repo, Video, video_id, "video", "videoId")
            most = self._limits.main_chats_per_video
            if len(await repo.main_chat_ids_of_videos([video_id])) >= most:
                raise LimitReached(f"a video has at most {most} main chats", ["videoId"])
            chat = MainChat(video_id=video_id, name=cleaned)
            await repo.add(chat)
            await repo.commit()
        return chat

    async def rename(self, chat_id: int, name: str) -> MainChat:
        return await renamed(self._uow, MainChat, chat_id, "main chat", name)

    async def delete(self, chat_id: int) -> Deleted:
        async with self._uow() as repo:
            await found(repo, MainChat, chat_id, "main chat")
            doomed = Doomed(main_chats={chat_id})
            await doom_chat_history(repo, doomed, Place(PlaceKind.MAIN_CHAT, chat_id))
            await doom_files(repo, doomed)
            await repo.delete(doomed)
            await repo.commit()
        await self._files.release(doomed.storage_keys)
        return Deleted.of(doomed)


class ChatService:
    """What every chat can do, whatever its kind."""

    def __init__(self, uow: UnitOfWork, files: FileReleaser) -> None:
        self._uow = uow
        self._files = files

    async def clear_history(self, chat: Place) -> Deleted:
        """Delete the chat's messages and the images they made; a frame loses its selection."""
        async with self._uow() as repo:
            if await repo.owner_of(chat) is None:
                raise NotFound(chat.label, ["id"])
            doomed = Doomed()
            await doom_chat_history(repo, doomed, chat)
            await doom_files(repo, doomed)
            await repo.delete(doomed)
            if chat.kind is PlaceKind.FRAME:
                frame = await repo.get(Frame, chat.id)
                assert frame is not None
                frame.selected_image_id, frame.updated_at = None, utcnow()
                await repo.save(frame)
            await repo.commit()
        await self._files.release(doomed.storage_keys)
        return Deleted.of(doomed)


def check_message(prompt: str, attached_image_ids: Sequence[int]) -> tuple[str, list[int]]:
    """The cleaned prompt and the distinct attached image ids, or a DomainError."""
    cleaned = clean_name(prompt, "prompt", PROMPT_MAX)
    attached = list(dict.fromkeys(attached_image_ids))
    if len(attached) > MAX_ATTACHMENTS:
        raise DomainError(
            ErrorCode.INVALID,
            f"at most {MAX_ATTACHMENTS} reference images per message",
            ["contextImageIds"],
        )
    return cleaned, attached


async def record_message(
    repo: Repository, chat: Place, prompt: str, with_context: bool, attached: Sequence[int]
) -> tuple[Message, PlaceOwner]:
    """Add a checked message to the chat, with its attachments; the caller commits."""
    owner = await repo.owner_of(chat)
    if owner is None or owner.video_id is None:
        raise NotFound(chat.label, [f"{_camel(chat.kind.key)}Id"])
    # held, so that a deletion of an attached image waits for the message, or goes first
    held = await repo.lock_images(attached, exclusive=False)
    for image_id in attached:
        image = await repo.get(Image, image_id) if image_id in held else None
        if image is None or image.project_id != owner.project_id:
            raise NotFound("image", ["contextImageIds"])
    message = Message(
        video_id=owner.video_id,
        prompt=prompt,
        with_context=with_context and chat.kind is PlaceKind.FRAME,
    )
    setattr(message, chat.kind.column, chat.id)
    await repo.add(message)
    assert message.id is not None
    if attached:
        await repo.add_attachments(message.id, attached)
    return message, owner


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)
