"""SQLModel tables: the persistent shape of Storyframe's domain.

Every foreign key cascades the way the product behaves: deleting a project deletes its videos,
a video its context, frames, main chats and messages, a message the images it produced.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

NAME_MAX = 200
EMAIL_MAX = 254
TITLE_MAX = 500
CONTENT_MAX = 20_000
PROMPT_MAX = 8_000
CAPTION_MAX = 500
ID_MAX = 2**31 - 1
"""The largest id a row can have: ids are INTEGER columns, 32-bit on PostgreSQL."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every dialect (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _fk(
    target: str, *, nullable: bool, ondelete: str = "CASCADE", index: bool = True
) -> Column[int]:
    return Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index)


def _timestamp() -> Column[datetime]:
    return Column(UtcDateTime(), nullable=False)


def _exactly_one(*columns: str) -> str:
    return " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in columns) + " = 1"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=EMAIL_MAX, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class AccessToken(SQLModel, table=True):
    """A bearer token, stored only as the SHA-256 of its secret."""

    __tablename__ = "access_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=_fk("users.id", nullable=False))
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    expires_at: datetime = Field(sa_column=_timestamp())
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
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Video(SQLModel, table=True):
    __tablename__ = "videos"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=_fk("projects.id", nullable=False))
    name: str = Field(max_length=NAME_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


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
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Frame(SQLModel, table=True):
    __tablename__ = "frames"
    __table_args__ = (Index("ix_frames_video_order", "video_id", "order", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(sa_column=_fk("videos.id", nullable=False, index=False))
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
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class MainChat(SQLModel, table=True):
    __tablename__ = "main_chats"

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(sa_column=_fk("videos.id", nullable=False))
    name: str = Field(max_length=NAME_MAX)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Message(SQLModel, table=True):
    """A prompt in exactly one chat: a frame, a video's context or a main chat."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(
            _exactly_one("frame_id", "context_id", "main_chat_id"), name="ck_messages_one_chat"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(sa_column=_fk("videos.id", nullable=False))
    frame_id: int | None = Field(default=None, sa_column=_fk("frames.id", nullable=True))
    context_id: int | None = Field(default=None, sa_column=_fk("contexts.id", nullable=True))
    main_chat_id: int | None = Field(default=None, sa_column=_fk("main_chats.id", nullable=True))
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    with_context: bool = False
    final_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Image(SQLModel, table=True):
    """A stored image. It belongs to its project, and to the message that made it, if any."""

    __tablename__ = "images"

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(sa_column=_fk("projects.id", nullable=False))
    video_id: int | None = Field(default=None, sa_column=_fk("videos.id", nullable=True))
    message_id: int | None = Field(default=None, sa_column=_fk("messages.id", nullable=True))
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
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class ImagePlacement(SQLModel, table=True):
    """One place an image appears in: a frame, a context, a main chat or a project's gallery."""

    __tablename__ = "image_placements"
    __table_args__ = (
        CheckConstraint(
            _exactly_one("frame_id", "context_id", "main_chat_id", "gallery_project_id"),
            name="ck_image_placements_one_place",
        ),
        Index("uq_placement_frame", "frame_id", "image_id", unique=True),
        Index("uq_placement_context", "context_id", "image_id", unique=True),
        Index("uq_placement_main_chat", "main_chat_id", "image_id", unique=True),
        Index("uq_placement_gallery", "gallery_project_id", "image_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    image_id: int = Field(sa_column=_fk("images.id", nullable=False))
    frame_id: int | None = Field(
        default=None, sa_column=_fk("frames.id", nullable=True, index=False)
    )
    context_id: int | None = Field(
        default=None, sa_column=_fk("contexts.id", nullable=True, index=False)
    )
    main_chat_id: int | None = Field(
        default=None, sa_column=_fk("main_chats.id", nullable=True, index=False)
    )
    gallery_project_id: int | None = Field(
        default=None, sa_column=_fk("projects.id", nullable=True, index=False)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


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


class Generation(SQLModel, table=True):
    """The work done for a message: which model made how many images, what it cost, how it went.

    Kept apart from the message, so the work can run after the request that asked for it.
    """

    __tablename__ = "generations"
    __table_args__ = (
        Index("uq_generations_idempotency", "owner_id", "idempotency_key", unique=True),
        Index("ix_generations_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, unique=True
        )
    )
    video_id: int = Field(sa_column=_fk("videos.id", nullable=False))
    status: str = Field(max_length=16)
    provider: str = Field(max_length=32)
    model: str = Field(max_length=200)
    vision_model: str | None = Field(default=None, max_length=200)
    size: str = Field(max_length=32)
    quality: str = Field(max_length=32)
    requested_count: int
    completed_count: int = 0
    errors: list[dict[str, object]] = Field(
        default_factory=list,
        sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )
    input_text_tokens: int | None = None
    input_image_tokens: int | None = None
    output_tokens: int | None = None
    estimated_cost_usd: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    started_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    owner_id: int | None = Field(default=None, sa_column=_fk("users.id", nullable=True))
    """The user who asked: whose running generations count against their cap, and whose
    idempotency keys it answers."""
    attempts: int = 0
    """How many times a process started it: 2 when a crash lost the first run's work."""
    heartbeat_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    """When the process running it last said it still is; a stale one is run again."""
    cancel_requested: bool = False
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str | None = Field(default=None, max_length=64)
    """A digest of what was asked: the same key with other input is a conflict."""
    slot_state: str | None = Field(default=None, max_length=16)
    """With workers on PostgreSQL, while it waits out a rate limit: LENT (its running slot
    serves another generation), then RETURNING (waiting for a slot back, ahead of new ones)."""


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
    at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class GenerationPreview(SQLModel, table=True):
    """A preview of an image still being made, on its way to the processes whose subscribers
    wait for it (PostgreSQL's notifications are too small to carry it). Deleted when its
    generation finishes, or by `storyframe gc` when a crash left it."""

    __tablename__ = "generation_previews"

    id: int | None = Field(default=None, primary_key=True)
    generation_id: int = Field(sa_column=_fk("generations.id", nullable=False))
    index: int
    """The image's position among those its generation was asked for."""
    sequence: int
    """Which preview of the image this is, from 0."""
    content_type: str = Field(max_length=100)
    width: int
    height: int
    data: bytes
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Export(SQLModel, table=True):
    """A video's selected frames made into one file (MP4, PDF or ZIP): what was asked, how far
    it got, and, once done, where the file is. Run as a job, like a generation."""

    __tablename__ = "exports"
    __table_args__ = (
        Index("uq_exports_idempotency", "owner_id", "idempotency_key", unique=True),
        Index("ix_exports_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(sa_column=_fk("videos.id", nullable=False))
    owner_id: int = Field(sa_column=_fk("users.id", nullable=False))
    format: str = Field(max_length=8)
    options: dict[str, object] = Field(
        default_factory=dict,
        sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )
    """What was asked besides the format (resolution, fps, transition, captions, layout, …),
    with every default filled in."""
    frame_ids: list[int] = Field(
        default_factory=list,
        sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )
    """The frames exported, in order, as they were when it was asked."""
    status: str = Field(max_length=16)
    progress_done: int = 0
    progress_total: int = 0
    error_code: str | None = Field(default=None, max_length=32)
    error_message: str | None = Field(default=None, max_length=1000)
    storage_key: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, max_length=2000)
    byte_size: int | None = None
    content_type: str | None = Field(default=None, max_length=100)
    subtitles_key: str | None = Field(default=None, max_length=500)
    subtitles_url: str | None = Field(default=None, max_length=2000)
    duration_ms: int | None = None
    """The exported video's length (MP4)."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    started_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    attempts: int = 0
    heartbeat_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    cancel_requested: bool = False
    idempotency_key: str | None = Field(default=None, max_length=255)
    request_hash: str | None = Field(default=None, max_length=64)


class DiagnosticRun(SQLModel, table=True):
    """A run of the diagnostics' checks for a user: which suite, each check's result as it came,
    and how it ended. Run as a job, like a generation."""

    __tablename__ = "diagnostic_runs"
    __table_args__ = (Index("ix_diagnostic_runs_status", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(sa_column=_fk("users.id", nullable=False))
    suite: str = Field(max_length=16)
    status: str = Field(max_length=16)
    allow_paid: bool = False
    """Whether the checks that cost money may run (the cost was confirmed)."""
    placeholder: bool = False
    """Whether the checks ran against the placeholder provider (no OpenAI key)."""
    estimated_cost_usd: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
    checks: list[dict[str, object]] = Field(
        default_factory=list,
        sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )
    """Every check of the suite in order: pending ones by name and title, the others with their
    result (images as small data URLs)."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    started_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    attempts: int = 0
    heartbeat_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    cancel_requested: bool = False
