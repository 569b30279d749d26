"""What generation shares across a whole process: the provider, the bound on calls in flight,
where images go, and the generations still running."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from storyframe.db.tables import Generation, Image, utcnow
from storyframe.domain.image_provider import (
    ImageProvider,
    RemoteModel,
)
from storyframe.domain.jobs import EventKind, Events, GenerationEvent, JobQueue, Preview
from storyframe.domain.model_catalogue import (
    ImageModelSpec,
    image_model,
    usable_image_models,
)
from storyframe.services.generation.types import (
    CUT_SHORT_SECONDS,
    MODELS_TTL_SECONDS,
    ImageDefaults,
)
from storyframe.services.media import Media
from storyframe.services.resized import fit_for_model

log = logging.getLogger("storyframe.generation")


class Generator:
    """The part of generation shared by a whole process: the provider, the bound on image calls
    in flight, and where images are stored. Built once by the app."""

    def __init__(
        self,
        provider: ImageProvider,
        media: Media,
        defaults: ImageDefaults,
        concurrency: int,
        budget_seconds: float = 600,
        vision_budget_seconds: float = 70,
        *,
        clock: Callable[[], datetime] = utcnow,
        jobs: JobQueue | None = None,
        events: Events | None = None,
        partial_images: int = 0,
        images_per_call: int = 1,
        idempotency_ttl: timedelta = timedelta(hours=24),
        wait_seconds: float = 600,
    ) -> None:
        self.provider = provider
        self.media = media
        """Where images are stored and checked; its decode slots are shared with uploads."""
        self.budget_seconds = budget_seconds
        """The longest a generation may take: its calls' timeouts and rate-limit waits."""
        self.vision_budget_seconds = vision_budget_seconds
        """The longest a vision call (or a models listing) may take, with its retries."""
        self.defaults = defaults
        self.calls = asyncio.Semaphore(concurrency)
        self.clock = clock
        """The time now, for a generation's start and end and models' shutdown dates."""
        self.jobs = jobs
        """Where accepted generations wait to run; None where nothing runs them (the tests of
        the service run them by hand)."""
        self.events = events
        self.partial_images = partial_images
        """Previews asked of each image call (0 to 3)."""
        self.images_per_call = images_per_call
        """Images asked of one call: 1, unless a provider makes batches cheaper."""
        self.idempotency_ttl = idempotency_ttl
        self.wait_seconds = wait_seconds
        """The longest a request that asked to wait waits for its generation to end."""
        self._running: set[asyncio.Future[Any]] = set()
        self._models: tuple[float, list[RemoteModel]] | None = None
        self._models_lock = asyncio.Lock()

    async def remote_models(self) -> list[RemoteModel]:
        """The provider's models, asked at most once every `MODELS_TTL_SECONDS` (a status
        badge may ask on every page); a failure is not remembered."""
        now = time.monotonic()
        if self._models is not None and now - self._models[0] < MODELS_TTL_SECONDS:
            return self._models[1]
        async with self._models_lock:
            if self._models is not None and time.monotonic() - self._models[0] < MODELS_TTL_SECONDS:
                return self._models[1]
            models = await self.provider.models()
            self._models = (time.monotonic(), models)
            return models

    def announce(
        self,
        kind: EventKind,
        generation: Generation,
        index: int | None = None,
        image_id: int | None = None,
        preview: Preview | None = None,
    ) -> None:
        """Tell the generation's subscribers what changed (the row is written already)."""
        if self.events is not None:
            self.events.publish(event_of(kind, generation, index, image_id, preview))

    def today(self) -> date:
        return self.clock().date()

    async def read_for_model(self, image: Image) -> tuple[bytes, str]:
        """A stored image's bytes and content type, made small enough to send to the model."""
        data = await self.media.storage.read(image.storage_key, url=image.url)
        return await self.media.decodes.run(fit_for_model, data, image.content_type)

    def keep(self, task: asyncio.Future[Any]) -> None:
        """Hold work that must end (a put, a record) whatever happens to what started it; a
        shutdown drains it."""
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def drain(self, seconds: float) -> None:
        """Let the work held by `keep` (stores and records that outlived a generation's run)
        finish; cancel what outlasts `seconds`."""
        if not self._running:
            return
        running = list(self._running)
        _, pending = await asyncio.wait(running, timeout=seconds)
        for task in pending:
            task.cancel()
        if pending:  # time to record them (and keep what they made) before the database goes
            await asyncio.wait(pending, timeout=CUT_SHORT_SECONDS)

    async def aclose(self) -> None:
        await self.provider.aclose()

    def models(self, today: date) -> list[ImageModelSpec]:
        if self.provider.placeholder:
            return [image_model(self.provider.name)]
        return usable_image_models(self.defaults.image_model, today)


def event_of(
    kind: EventKind,
    generation: Generation,
    index: int | None = None,
    image_id: int | None = None,
    preview: Preview | None = None,
) -> GenerationEvent:
    """The event of a change to the generation."""
    assert generation.id is not None
    assert generation.owner_id is not None
    return GenerationEvent(
        kind,
        generation.id,
        generation.video_id,
        generation.owner_id,
        index=index,
        image_id=image_id,
        preview=preview,
    )
