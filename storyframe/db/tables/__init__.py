"""SQLModel tables: the persistent shape of Storyframe's domain.

Every foreign key cascades the way the product behaves: deleting a project deletes its videos,
a video its context, frames, main chats and messages, a message the images it produced.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, Text
from sqlmodel import Field, SQLModel

from storyframe.db.tables.columns import (
    CAPTION_MAX,
    CONTENT_MAX,
    EMAIL_MAX,
    ID_MAX,
    NAME_MAX,
    PROMPT_MAX,
    TITLE_MAX,
    UtcDateTime,
    exactly_one,
    fk,
    timestamp,
    utcnow,
)
from storyframe.db.tables.jobs import DiagnosticRun, Export, Generation, GenerationPreview

__all__ = [
    "CAPTION_MAX",
    "CONTENT_MAX",
    "EMAIL_MAX",
    "ID_MAX",
    "NAME_MAX",
    "PROMPT_MAX",
    "TITLE_MAX",
    "AccessToken",
    "Context",
    "DiagnosticRun",
    "Export",
    "Frame",
    "Generation",
    "GenerationPreview",
    "Image",
    "ImagePlacement",
    "LoginAttempt",
    "MainChat",
    "Message",
    "MessageAttachment",
    "Project",
    "User",
    "UtcDateTime",
    "Video",
    "utcnow",
]


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=EMAIL_MAX, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class AccessToken(SQLModel, table=True):
    """A bearer token, stored only as the SHA-256 of its secret."""

    __tablename__ = "access_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=fk("users.id", nullable=False))
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
    expires_at: datetime = Field(sa_column=timestamp())
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )


class Project(SQLModel, table=True):
    __tablename__ = "projects"

    id: int | None = Field(default=None, primary_key=True)
    # Nullable only for rows made before accounts existed; such projects are nobody's.
    owner_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("users.id", ondelete="CASCADE", name="fk_projects_owner"),
            nullable=True,
            index=True,
        ),
    )
    name: str = Field(max_length=NAME_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class Video(SQLModel, table=True):
    __tablename__ = "videos"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=fk("projects.id", nullable=False))
    name: str = Field(max_length=NAME_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class Context(SQLModel, table=True):
    """The per-video context: text and reference images, itself a chat. Exactly one per video."""

    __tablename__ = "contexts"

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("videos.id", ondelete="CASCADE"), nullable=False, unique=True
        )
    )
    content: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class Frame(SQLModel, table=True):
    __tablename__ = "frames"
    __table_args__ = (Index("ix_frames_video_order", "video_id", "order", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(sa_column=fk("videos.id", nullable=False, index=False))
    title: str = Field(max_length=TITLE_MAX)
    order: int
    duration_ms: int | None = None
    """How long the frame is shown in an exported video; the export's default when unset."""
    caption: str | None = Field(default=None, max_length=CAPTION_MAX)
    """Text shown with the frame: burned into an exported video, as its subtitle, in the PDF."""
    # use_alter breaks the frames → images → messages → frames cycle when tables are created.
    selected_image_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey(
                "images.id", ondelete="SET NULL", use_alter=True, name="fk_frames_selected_image"
            ),
            nullable=True,
            index=True,
        ),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class MainChat(SQLModel, table=True):
    __tablename__ = "main_chats"

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(sa_column=fk("videos.id", nullable=False))
    name: str = Field(max_length=NAME_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class Message(SQLModel, table=True):
    """A prompt in exactly one chat: a frame, a video's context or a main chat."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(
            exactly_one("frame_id", "context_id", "main_chat_id"), name="ck_messages_one_chat"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(sa_column=fk("videos.id", nullable=False))
    frame_id: int | None = Field(default=None, sa_column=fk("frames.id", nullable=True))
    context_id: int | None = Field(default=None, sa_column=fk("contexts.id", nullable=True))
    main_chat_id: int | None = Field(default=None, sa_column=fk("main_chats.id", nullable=True))
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    with_context: bool = False
    final_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class Image(SQLModel, table=True):
    """A stored image. It belongs to its project, and to the message that made it, if any."""

    __tablename__ = "images"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=fk("projects.id", nullable=False))
    video_id: int | None = Field(default=None, sa_column=fk("videos.id", nullable=True))
    message_id: int | None = Field(default=None, sa_column=fk("messages.id", nullable=True))
    url: str = Field(sa_column=Column(Text, nullable=False))
    thumbnail_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    storage_key: str = Field(max_length=300, index=True)
    checksum: str | None = Field(default=None, max_length=64)
    width: int
    height: int
    content_type: str = Field(max_length=100)
    byte_size: int
    placeholder: bool = Field(default=False, description="made offline, not by a model")
    slot: int | None = Field(
        default=None, description="its position among the images its generation was asked for"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class ImagePlacement(SQLModel, table=True):
    """One place an image appears in: a frame, a context, a main chat or a project's gallery."""

    __tablename__ = "image_placements"
    __table_args__ = (
        CheckConstraint(
            exactly_one("frame_id", "context_id", "main_chat_id", "gallery_project_id"),
            name="ck_image_placements_one_place",
        ),
        Index("uq_placement_frame", "frame_id", "image_id", unique=True),
        Index("uq_placement_context", "context_id", "image_id", unique=True),
        Index("uq_placement_main_chat", "main_chat_id", "image_id", unique=True),
        Index("uq_placement_gallery", "gallery_project_id", "image_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    image_id: int = Field(sa_column=fk("images.id", nullable=False))
    frame_id: int | None = Field(
        default=None, sa_column=fk("frames.id", nullable=True, index=False)
    )
    context_id: int | None = Field(
        default=None, sa_column=fk("contexts.id", nullable=True, index=False)
    )
    main_chat_id: int | None = Field(
        default=None, sa_column=fk("main_chats.id", nullable=True, index=False)
    )
    gallery_project_id: int | None = Field(
        default=None, sa_column=fk("projects.id", nullable=True, index=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class MessageAttachment(SQLModel, table=True):
    """An image a message used as a reference."""

    __tablename__ = "message_attachments"

    message_id: int = Field(
        sa_column=Column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    )
    image_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )
    position: int = 0


class LoginAttempt(SQLModel, table=True):
    """An attempt to log in, sign up or change a password that a rate limit let through, as
    every API process on one PostgreSQL database counts it (SQLite's one process counts in
    memory and leaves the table empty)."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_bucket_key_at", "bucket", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    bucket: str = Field(max_length=32)
    """Which limit counted it: the one per e-mail address or the one per client."""
    key: str = Field(max_length=64)
    """A SHA-256 digest (hex) of what was counted, so no e-mail address is kept here."""
    at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
