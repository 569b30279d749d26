"""Configuration from the environment, read once by the app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from storyframe.db.engine import normalize_url, sqlite_url_for


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, populate_by_name=True
    )

    database_url: str | None = Field(
        default=None, description="sqlite+aiosqlite:///… or postgresql://…; SQLite by default."
    )
    data_dir: Path = Field(default=Path("./storyframe-data"), alias="STORYFRAME_DATA_DIR")
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=1, le=65535)
    public_url: str | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_format: Literal["json", "console"] = "console"
    log_level: str = "INFO"
    graphiql: bool = Field(default=True, description="Serve GraphiQL at GET /graphql.")
    introspection: bool = Field(default=True, description="Answer introspection queries.")

    token_ttl_days: float = Field(default=30, gt=0, description="How long a token lives.")
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    login_attempts_per_email: int = Field(default=10, ge=1, description="per 15 minutes")
    login_attempts_per_client: int = Field(default=100, ge=1, description="per 15 minutes")

    max_query_depth: int = Field(default=12, ge=2)
    max_aliases: int = Field(default=30, ge=0)
    max_tokens: int = Field(default=4000, ge=100)
    max_query_cost: int = Field(
        default=200_000,
        ge=100,
        description="the most fields a query may resolve: each list counts its `first` or its "
        "stored bound, multiplied down the nesting",
    )
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="per GraphQL request")
    request_timeout_seconds: float = Field(default=30, gt=0)
    persisted_queries: int = Field(
        default=1000, ge=0, description="documents kept for automatic persisted queries (0: off)"
    )
    cors_allow_headers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="request headers browsers may send, beyond the default set",
    )

    max_frames_per_video: int = Field(default=500, ge=1, le=10_000)
    max_main_chats_per_video: int = Field(default=50, ge=1, le=1_000)
    max_image_places: int = Field(
        default=100, ge=1, le=10_000, description="places (frames, chats, galleries) per image"
    )

    storage_backend: Literal["local", "cloudinary"] = "local"
    cloudinary_url: str | None = Field(default=None, description="as the Cloudinary SDK reads it")
    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    max_upload_files: int = Field(default=10, ge=1, le=100)
    max_concurrent_decodes: int = Field(
        default=2, ge=1, le=64, description="images decoded at once, per process"
    )

    openai_api_key: SecretStr | None = Field(
        default=None, description="No key means placeholder images made offline."
    )
    openai_base_url: str | None = Field(default=None, description="as the openai SDK reads it")
    openai_image_model: str = Field(default="gpt-image-2.6-flare", min_length=1)
    openai_vision_model: str = Field(default="gpt-5.4-mini", min_length=1)
    openai_image_size: str = Field(default="1024x1024", pattern=r"^(auto|\d+x\d+)$")
    openai_image_quality: str = Field(default="medium", min_length=1)
    openai_timeout_seconds: float = Field(
        default=180, gt=0, description="for one image call; the vision call gets a third"
    )
    openai_rate_limit_retries: int = Field(
        default=2, ge=0, le=5, description="retries of an image call refused with 429"
    )
    openai_max_retry_wait_seconds: float = Field(
        default=20, ge=0, description="the longest Retry-After an image call waits for"
    )
    generation_concurrency: int = Field(
        default=4, ge=1, le=64, description="image calls in flight at once, per process"
    )
    generation_sweep_seconds: float = Field(
        default=300,
        gt=0,
        description="how often to look for generations whose process stopped without "
        "recording them (a crash), and record them as interrupted",
    )
    openai_partial_images: int = Field(
        default=2,
        ge=0,
        le=3,
        description="previews streamed while each image renders (each costs about 100 output "
        "tokens); 0 turns streaming off",
    )
    generation_images_per_call: int = Field(
        default=1,
        ge=1,
        le=4,
        description="images asked of one provider call; 1 streams previews and keeps a failure "
        "to its image, more batches them where a provider makes that cheaper",
    )
    generation_wait_seconds: float = Field(
        default=600,
        gt=0,
        description="the longest a generate mutation with `wait: true` waits for its images",
    )
    generation_running_per_user: int = Field(
        default=2, ge=1, le=100, description="generations running at once for one user"
    )
    generation_running_total: int = Field(
        default=8,
        ge=1,
        le=1_000,
        description="generations running at once in one process (SQLite), or in the whole "
        "deployment (PostgreSQL workers); the rest wait in the queue",
    )
    generation_jobs_in_process: bool = Field(
        default=True,
        description="run generations in this process (the embedded default); off for API "
        "processes that leave them to `storyframe worker`",
    )
    generation_heartbeat_seconds: float = Field(
        default=10,
        gt=0,
        description="how often a process says it is still running its generations; one "
        "silent for three times this is run again elsewhere",
    )
    worker_concurrency: int = Field(
        default=4,
        ge=2,
        le=100,
        description="generations one `storyframe worker` runs at once (PostgreSQL)",
    )
    generation_shutdown_grace_seconds: float = Field(
        default=30,
        ge=0,
        description="how long a stopping process lets running generations finish before "
        "handing their unfinished images back to the queue",
    )
    idempotency_key_hours: float = Field(
        default=24, gt=0, description="how long a generate mutation's idempotency key holds"
    )
    export_running: int = Field(
        default=1,
        ge=1,
        le=16,
        description="exports encoded at once by one process (the API process on SQLite, each "
        "`storyframe worker` on PostgreSQL); each keeps a CPU core busy",
    )
    export_unfinished_per_user: int = Field(
        default=3,
        ge=1,
        le=100,
        description="exports one user may have queued or running at once; more are refused",
    )
    diagnostics_runs_per_hour: int = Field(
        default=10, ge=1, le=1_000, description="diagnostics runs one user may start in an hour"
    )
    max_subscriptions_per_connection: int = Field(
        default=20, ge=1, le=1_000, description="subscriptions one WebSocket may hold at once"
    )

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def temp_dir(self) -> Path:
        """Files the server writes for a moment; what a killed process left, `gc` removes."""
        return self.data_dir / "tmp"

    @property
    def max_upload_body_bytes(self) -> int:
        """A multipart request may carry `max_upload_files` files of the largest size."""
        return self.max_upload_files * self.max_image_bytes + self.max_body_bytes

    @field_validator("openai_api_key")
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value:
            normalize_url(value)  # raises on an unsupported scheme
        return value or None

    @field_validator("cors_origins", "cors_allow_headers", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url_for(self.data_dir)

    @property
    def uses_postgres(self) -> bool:
        return self.resolved_database_url.startswith("postgresql")

    @property
    def uses_workers(self) -> bool:
        """Generations run in `storyframe worker` processes, from PostgreSQL's task queue."""
        return self.uses_postgres and not self.generation_jobs_in_process

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
