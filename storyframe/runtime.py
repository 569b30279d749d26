"""What one running app owns, wired from the settings: database, services, providers, storage."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storyframe.db.accounts import SqlAccountStore
from storyframe.db.blobs import SqlBlobIndex
from storyframe.db.engine import create_engine, create_read_engine, session_factory
from storyframe.db.generations import SqlJobStore, SqlStaleGenerations
from storyframe.db.outage import Outage
from storyframe.db.ratelimits import SqlRateLimit
from storyframe.db.reader import SqlReader
from storyframe.db.reads import Reads
from storyframe.db.repository import SqlUnitOfWork
from storyframe.db.tables import DiagnosticRun, Export, utcnow
from storyframe.domain.image_provider import ImageProvider
from storyframe.domain.jobs import JobQueue, Ticket
from storyframe.domain.ports import BlobStorage
from storyframe.events import EventHub, PostgresEvents
from storyframe.jobs import InProcessRunner
from storyframe.jobs.exports import ExportJobs
from storyframe.jobs.postgres import PostgresJobQueue, SlotGrants
from storyframe.providers.openai import build_openai_provider
from storyframe.providers.placeholder import PlaceholderProvider
from storyframe.resolvers.loaders import make_loaders
from storyframe.schema.request_context import Loaders
from storyframe.services.accounts import AccountService, LoginLimits
from storyframe.services.container import Services
from storyframe.services.decoding import DecodeSlots
from storyframe.services.diagnostic_runs import Diagnostician
from storyframe.services.diagnostics import DiagnosticsEnv
from storyframe.services.export.requests import Exporter
from storyframe.services.files import FileJanitor
from storyframe.services.generation import Generator, ImageDefaults, Sweep
from storyframe.services.generation.types import CUT_SHORT_SECONDS
from storyframe.services.image_files import ImageLimits
from storyframe.services.limits import ListLimits
from storyframe.services.media import Media
from storyframe.services.passwords import Passwords
from storyframe.services.ratelimit import SlidingWindow
from storyframe.services.temporaries import Temporaries
from storyframe.settings import Settings
from storyframe.storage.local import LocalStorage

LOGIN_WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True, slots=True)
class Runtime:
    """What one running app owns, and the scopes it hands each request."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reads: Reads
    accounts: AccountService
    media: Media
    janitor: FileJanitor
    generator: Generator
    sweep: Sweep
    list_limits: ListLimits
    runner: InProcessRunner
    """Runs generations in this process (unless the settings leave them to workers)."""
    job_store: SqlJobStore
    events: EventHub | PostgresEvents
    """In the process; across processes through LISTEN/NOTIFY on PostgreSQL."""
    exporter: Exporter
    exports_runner: InProcessRunner
    """Runs exports in this process (unless the settings leave them to workers)."""
    export_store: SqlJobStore
    diagnostician: Diagnostician
    diagnostics_runner: InProcessRunner
    """Runs diagnostics in this process, whatever runs generations (an API process with
    workers too): the run's checks use the API as its user."""
    diagnostics_store: SqlJobStore
    grants: SlotGrants | None = None
    """With PostgreSQL and generations left to `storyframe worker`: grants running slots to
    queued generations, in the transaction that queues them."""
    outage: Outage = field(default_factory=Outage)

    async def run_job(self, ticket: Ticket) -> None:
        await self.services_for(ticket.owner_id).generation.run_job(ticket.row_id)

    async def run_export(self, ticket: Ticket) -> None:
        await self.services_for(ticket.owner_id).exports.run_job(ticket.row_id)

    async def run_diagnostics(self, ticket: Ticket) -> None:
        services = self.services_for(ticket.owner_id)
        await services.diagnostics.run_job(ticket.row_id, self.diagnostics_env(services))

    def diagnostics_env(self, services: Services) -> DiagnosticsEnv:
        doc = self.diagnostician
        return DiagnosticsEnv.of_services(
            services,
            storage_backend=doc.storage_backend,
            database_dialect=doc.database_dialect,
            secrets=doc.secrets,
        )

    def services_for(self, user_id: int) -> Services:
        return Services.build(
            SqlUnitOfWork(self.sessions, user_id, self._on_queued if self.grants else None),
            SqlReader(self.reads, user_id),
            self.media,
            self.generator,
            self.list_limits,
            self.exporter,
            self.diagnostician,
        )

    async def _on_queued(self, session: AsyncSession) -> None:
        """In the transaction that queued a generation or an export, on PostgreSQL with
        workers: grant free running slots, and put queued exports on the task queue."""
        assert self.grants is not None
        await self.grants.within(session)
        await ExportJobs().within(session)

    async def start(self) -> None:
        """Open what works in the background: the events' connections on PostgreSQL."""
        if isinstance(self.events, PostgresEvents):
            await self.events.start()

    async def aclose(self, drain_seconds: float | None = None) -> None:
        """Let running generations finish for a while, hand the rest back to the queue, then
        send the last events and close the provider's client and the database."""
        grace = self.settings.generation_shutdown_grace_seconds
        grace = grace if drain_seconds is None else drain_seconds
        try:
            await asyncio.gather(
                self.runner.stop(grace, CUT_SHORT_SECONDS),
                self.exports_runner.stop(grace, CUT_SHORT_SECONDS),
                self.diagnostics_runner.stop(grace, CUT_SHORT_SECONDS),
            )
            await self.generator.drain(grace)
            await self.generator.aclose()
        finally:
            try:
                if isinstance(self.events, PostgresEvents):
                    await self.events.aclose()
            finally:
                await self.engine.dispose()
                await self.reads.dispose()

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Where the database's events are (statements, connections): the engine's, and the
        reads' where they have connections of their own (SQLite)."""
        engine, reads = self.engine.sync_engine, self.reads.sync_engine
        return (engine,) if reads.pool is engine.pool else (engine, reads)

    @property
    def max_subscriptions(self) -> int:
        return self.settings.max_subscriptions_per_connection

    async def release_reads(self) -> None:
        await self.reads.release()

    def scope(self, user_id: int) -> tuple[Services, Loaders]:
        services = self.services_for(user_id)
        return services, make_loaders(services)


def build_runtime(
    settings: Settings,
    *,
    provider: ImageProvider | None = None,
    storage: BlobStorage | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Runtime:
    """The runtime the settings describe. `provider`, `storage` and `clock` take the place of
    what the settings would build (tests and benchmarks wrap or fake them), everywhere they are
    used: generation, uploads, the janitor, the media route, token expiry and the sweep."""
    engine = create_engine(settings.resolved_database_url)
    sessions = session_factory(engine)
    reads = Reads(create_read_engine(engine))
    accounts = AccountService(
        SqlAccountStore(sessions, reads),
        Passwords(settings.argon2_time_cost, settings.argon2_memory_kib),
        # Several API processes may serve one PostgreSQL database, so its attempts are counted
        # there; SQLite's one process counts them in memory.
        LoginLimits(
            per_email=SqlRateLimit(
                sessions,
                "email",
                settings.login_attempts_per_email,
                LOGIN_WINDOW_SECONDS,
                clock=clock,
            )
            if engine.dialect.name == "postgresql"
            else SlidingWindow(settings.login_attempts_per_email, LOGIN_WINDOW_SECONDS),
            per_client=SqlRateLimit(
                sessions,
                "client",
                settings.login_attempts_per_client,
                LOGIN_WINDOW_SECONDS,
                clock=clock,
            )
            if engine.dialect.name == "postgresql"
            else SlidingWindow(settings.login_attempts_per_client, LOGIN_WINDOW_SECONDS),
        ),
        timedelta(days=settings.token_ttl_days),
        clock=clock,
    )
    storage = storage or build_storage(settings)
    temporaries = build_temporaries(settings, storage)
    janitor = FileJanitor(SqlBlobIndex(sessions), storage)
    limits = ImageLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    # One set for the process, uploads and generations alike: what decoding images may hold
    # in memory at once.
    decodes = DecodeSlots(settings.max_concurrent_decodes)
    media = Media(storage, janitor, limits, settings.max_upload_files, temporaries, decodes=decodes)
    runner = InProcessRunner(
        per_user=settings.generation_running_per_user, total=settings.generation_running_total
    )
    jobs: JobQueue | None = runner if settings.generation_jobs_in_process else None
    grants: SlotGrants | None = None
    if settings.uses_workers:
        grants = SlotGrants(
            per_user=settings.generation_running_per_user, total=settings.generation_running_total
        )
        jobs = PostgresJobQueue(engine)
    events = (
        PostgresEvents(settings.resolved_database_url) if settings.uses_postgres else EventHub()
    )
    generator = Generator(
        provider or build_provider(settings),
        media,
        image_defaults(settings),
        settings.generation_concurrency,
        # A vision call (three tries of a third of the timeout), then image calls that may
        # wait for a free slot once, each with its rate-limit retries.
        budget_seconds=settings.openai_timeout_seconds * 3
        + settings.openai_max_retry_wait_seconds * settings.openai_rate_limit_retries
        + 10,
        vision_budget_seconds=settings.openai_timeout_seconds + 10,
        clock=clock,
        jobs=jobs,
        events=events,
        partial_images=settings.openai_partial_images,
        images_per_call=settings.generation_images_per_call,
        idempotency_ttl=timedelta(hours=settings.idempotency_key_hours),
        wait_seconds=settings.generation_wait_seconds,
    )
    exports_runner = InProcessRunner(per_user=1, total=settings.export_running)
    exporter = Exporter(
        storage,
        janitor,
        temporaries,
        jobs=None if settings.uses_workers else exports_runner,
        events=events,
        clock=clock,
        unfinished_per_user=settings.export_unfinished_per_user,
        idempotency_ttl=timedelta(hours=settings.idempotency_key_hours),
    )
    diagnostics_runner = InProcessRunner(per_user=1, total=2)
    secret = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    diagnostician = Diagnostician(
        jobs=diagnostics_runner,
        events=events,
        limit=SqlRateLimit(
            sessions, "diagnostics", settings.diagnostics_runs_per_hour, 3600, clock=clock
        )
        if engine.dialect.name == "postgresql"
        else SlidingWindow(settings.diagnostics_runs_per_hour, 3600),
        storage_backend=settings.storage_backend,
        database_dialect=engine.dialect.name,
        secrets=(secret,) if secret else (),
        clock=clock,
    )
    sweep = Sweep(
        SqlStaleGenerations(sessions), generator, settings.generation_shutdown_grace_seconds
    )
    list_limits = ListLimits(
        frames_per_video=settings.max_frames_per_video,
        main_chats_per_video=settings.max_main_chats_per_video,
        image_places=settings.max_image_places,
    )
    runtime = Runtime(
        settings,
        engine,
        sessions,
        reads,
        accounts,
        media,
        janitor,
        generator,
        sweep,
        list_limits,
        runner,
        SqlJobStore(sessions),
        events,
        exporter,
        exports_runner,
        SqlJobStore(sessions, Export),
        diagnostician,
        diagnostics_runner,
        SqlJobStore(sessions, DiagnosticRun),
        grants,
    )
    runner.bind(runtime.run_job)
    exports_runner.bind(runtime.run_export)
    diagnostics_runner.bind(runtime.run_diagnostics)
    return runtime


def image_defaults(settings: Settings) -> ImageDefaults:
    return ImageDefaults(
        image_model=settings.openai_image_model,
        vision_model=settings.openai_vision_model,
        size=settings.openai_image_size,
        quality=settings.openai_image_quality,
    )


def build_provider(settings: Settings) -> ImageProvider:
    """OpenAI when a key is configured; otherwise placeholder images made offline."""
    if settings.openai_api_key is None:
        return PlaceholderProvider()
    return build_openai_provider(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        image_timeout=settings.openai_timeout_seconds,
        rate_limit_retries=settings.openai_rate_limit_retries,
        max_retry_wait=settings.openai_max_retry_wait_seconds,
    )


def build_storage(settings: Settings) -> BlobStorage:
    if settings.storage_backend == "cloudinary":
        from storyframe.storage.cloudinary import CloudinaryStorage

        if not settings.cloudinary_url:
            raise ValueError("STORAGE_BACKEND=cloudinary needs CLOUDINARY_URL")
        return CloudinaryStorage(settings.cloudinary_url)
    return LocalStorage(settings.media_dir, settings.resolved_public_url)


def build_temporaries(settings: Settings, storage: BlobStorage) -> Temporaries:
    """The data directory's folder of temporary files; local storage writes its own beside
    the files they become, to rename them into place."""
    if isinstance(storage, LocalStorage):
        return Temporaries(settings.temp_dir, storage.partial_writes)
    return Temporaries(settings.temp_dir)
