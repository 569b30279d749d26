"""What the checks run with: the provider and its defaults for the OPENAI suite, and a user's
services for the API suite, with how long to wait for the jobs they start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from storyframe.domain.image_provider import ImageProvider
from storyframe.services.generation import ImageDefaults

if TYPE_CHECKING:  # the container builds the runs that use this package
    from storyframe.services.container import Services


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DiagnosticsEnv:
    provider: ImageProvider
    """The provider the OPENAI suite calls directly: OpenAI, or the placeholder."""
    defaults: ImageDefaults
    """The configured image and vision models (and default size and quality)."""
    today: date
    """The day the models' shutdown dates are compared with."""
    services: Services | None = None
    """The services of the user the API suite acts as; the API suite needs them. What it
    makes, it makes in a scratch project of theirs, deleted at its end."""
    storage_backend: str = "local"
    """Where images are stored (`local` or `cloudinary`), as the configuration check reports."""
    database_dialect: str = "sqlite"
    """`sqlite` or `postgresql`, as the configuration check reports."""
    allow_paid: bool = True
    """Whether checks that cost money may run; otherwise they are SKIPPED, saying what they
    would cost and `paid_hint`. Nothing costs money with the placeholder provider."""
    paid_hint: str = "confirm the cost to run it"
    """What a person does to let the checks that cost money run."""
    secrets: tuple[str, ...] = ()
    """Strings never shown in a result (the API key): replaced by "[redacted]" wherever they
    would appear."""
    generation_wait_seconds: float = 600.0
    """The longest the API suite waits for one generation to end."""
    export_wait_seconds: float = 300.0
    """The longest the full flow waits for its PDF export to end."""
    poll_seconds: float = 0.5
    """How often a job's row is read again while no event says it has ended."""
    partial_images: int = 0
    """Previews each of the API's image calls streams (they count in its cost)."""
    clock: Callable[[], datetime] = field(default=_now)
    """The time, for the scratch project's name."""

    @classmethod
    def of_services(
        cls,
        services: Services,
        *,
        storage_backend: str,
        database_dialect: str,
        allow_paid: bool = True,
        paid_hint: str = "confirm the cost to run it",
        secrets: tuple[str, ...] = (),
        export_wait_seconds: float = 300.0,
    ) -> DiagnosticsEnv:
        """The environment of both suites for a user: the provider, defaults, day, waits and
        previews of the generation their services use."""
        generator = services.generation.generator
        return cls(
            provider=generator.provider,
            defaults=generator.defaults,
            today=generator.today(),
            services=services,
            storage_backend=storage_backend,
            database_dialect=database_dialect,
            allow_paid=allow_paid,
            paid_hint=paid_hint,
            secrets=secrets,
            generation_wait_seconds=generator.wait_seconds,
            export_wait_seconds=export_wait_seconds,
            partial_images=generator.partial_images,
        )

    @property
    def image_model(self) -> str:
        """The image model the checks ask for: the placeholder's own name without a key."""
        return self.provider.name if self.provider.placeholder else self.defaults.image_model

    @property
    def vision_model(self) -> str:
        return self.provider.name if self.provider.placeholder else self.defaults.vision_model
