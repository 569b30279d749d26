"""Configuration from the environment, read once by the app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
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
    graphiql: bool = True

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value:
            normalize_url(value)  # raises on an unsupported scheme
        return value or None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url_for(self.data_dir)

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
