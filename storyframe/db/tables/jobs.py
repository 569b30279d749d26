"""The tables of work that outlives a request: generations (and their previews on their way to
other processes), exports and diagnostics runs. Each row is the durable record of its job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Float, ForeignKey, Index, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from storyframe.db.tables.columns import UtcDateTime, fk, timestamp, utcnow


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
    video_id: int = Field(sa_column=fk("videos.id", nullable=False))
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
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
    started_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True)
    )
    owner_id: int | None = Field(default=None, sa_column=fk("users.id", nullable=True))
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


class GenerationPreview(SQLModel, table=True):
    """A preview of an image still being made, on its way to the processes whose subscribers
    wait for it (PostgreSQL's notifications are too small to carry it). Deleted when its
    generation finishes, or by `storyframe gc` when a crash left it."""

    __tablename__ = "generation_previews"

    id: int | None = Field(default=None, primary_key=True)
    generation_id: int = Field(sa_column=fk("generations.id", nullable=False))
    index: int
    """The image's position among those its generation was asked for."""
    sequence: int
    """Which preview of the image this is, from 0."""
    content_type: str = Field(max_length=100)
    width: int
    height: int
    data: bytes
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())


class Export(SQLModel, table=True):
    """A video's selected frames made into one file (MP4, PDF or ZIP): what was asked, how far
    it got, and, once done, where the file is. Run as a job, like a generation."""

    __tablename__ = "exports"
    __table_args__ = (
        Index("uq_exports_idempotency", "owner_id", "idempotency_key", unique=True),
        Index("ix_exports_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    video_id: int = Field(sa_column=fk("videos.id", nullable=False))
    owner_id: int = Field(sa_column=fk("users.id", nullable=False))
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
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
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
    owner_id: int = Field(sa_column=fk("users.id", nullable=False))
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
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp())
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
