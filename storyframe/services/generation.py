"""Image generation: a prompt in a chat becomes a message, a generation record and 1 to 4 images.

The request and the work are separate steps. `prepare` checks the input and saves the user's
message with a QUEUED generation; `run` does the work for a generation id alone (describing the
reference images, calling the provider, storing every image) and records how it went. A
background worker can call `run` later; the API calls both in turn for now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from storyframe.db.tables import Frame, Generation, Image, MainChat, Message, utcnow
from storyframe.services.chats import check_message, record_message
from storyframe.services.decoding import DecodeSlots
from storyframe.services.errors import DomainError, ErrorCode, NotFound
from storyframe.services.images import StoredImage, add_images
from storyframe.services.imaging import (
    ImageLimits,
    ImageRefused,
    fit_for_model,
    inspect_image_async,
)
from storyframe.services.models import (
    ImageModelSpec,
    image_model,
    usable_image_models,
    vision_cost,
)
from storyframe.services.places import Place, PlaceKind
from storyframe.services.ports import (
    BlobStorage,
    FileReleaser,
    Repository,
    StaleGenerations,
    UnitOfWork,
)
from storyframe.services.prompts import DESCRIBE_REFERENCES, assemble_prompt, includes_context
from storyframe.services.providers import (
    CallResult,
    Description,
    Failure,
    ImageCall,
    ImageProvider,
    ProviderError,
    Reference,
    RemoteModel,
    Usage,
)
from storyframe.services.temporaries import GENERATED_PREFIX, Temporaries

log = logging.getLogger("storyframe.generation")

MAX_IMAGES = 4
QUESTION_MAX = 2_000
MAX_ANALYZED = 16
MODELS_TTL_SECONDS = 300
SWEEP_MARGIN_SECONDS = 60
CUT_SHORT_SECONDS = 15
"""How long shutdown waits for generations it stopped to be recorded."""
INTERRUPTED = "the server stopped before the generation finished; try again"


class GenerationStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FAILURE_CODES = {
    Failure.REFUSED: ErrorCode.CONTENT_REFUSED,
    Failure.RATE_LIMITED: ErrorCode.RATE_LIMITED,
    Failure.TIMEOUT: ErrorCode.PROVIDER_TIMEOUT,
    Failure.MISCONFIGURED: ErrorCode.PROVIDER_MISCONFIGURED,
    Failure.UNAVAILABLE: ErrorCode.PROVIDER_UNAVAILABLE,
    Failure.BAD_RESPONSE: ErrorCode.PROVIDER_ERROR,
}


def provider_error(error: ProviderError, field: Sequence[str] | None = None) -> DomainError:
    return DomainError(FAILURE_CODES[error.failure], error.message, field)


@dataclass(frozen=True, slots=True)
class ImageDefaults:
    image_model: str
    vision_model: str
    size: str
    quality: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    chat: Place
    prompt: str
    image_count: int = 1
    reference_ids: Sequence[int] = ()
    with_context: bool = False
    model: str | None = None
    size: str | None = None
    quality: str | None = None


@dataclass(frozen=True, slots=True)
class Generated:
    message: Message
    generation: Generation
    images: list[Image]
    error: DomainError | None
    """Set when no image was made: what the user is told."""


@dataclass(frozen=True, slots=True)
class Analysis:
    text: str
    model: str
    placeholder: bool
    usage: Usage | None
    estimated_cost_usd: float | None


@dataclass(frozen=True, slots=True)
class ModelState:
    name: str
    listed: bool | None
    """Whether the provider lists the model; None when it could not be asked."""
    shutdown_date: date | None


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    configured: bool
    provider: str
    image_model: ModelState
    vision_model: ModelState
    error: DomainError | None


@dataclass(frozen=True, slots=True)
class _Job:
    """What a generation's work needs, read when it starts."""

    generation: Generation
    message: Message
    context_text: str | None
    caption: str
    attachments: list[Image]


@dataclass(slots=True)
class _Outcome:
    """What one generation did, gathered as its calls finish."""

    started: float
    chat: Place | None = None
    stored: list[tuple[int, StoredImage]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage | None = None
    cost: float | None = None
    vision_model: str | None = None
    vision_ms: float | None = None
    first_image_ms: float | None = None
    references: int = 0
    references_sent: int = 0
    final_prompt: str | None = None
    requested: int = 0
    finishing: bool = False

    def add_usage(self, usage: Usage | None, cost: float | None) -> None:
        if usage is not None:
            self.usage = usage if self.usage is None else self.usage + usage
        if cost is not None:
            self.cost = cost if self.cost is None else self.cost + cost

    def fail(self, indexes: Sequence[int | None], code: ErrorCode, message: str) -> None:
        self.errors.extend({"index": i, "code": code.value, "message": message} for i in indexes)

    def unaccounted(self) -> list[int]:
        """The positions of the images neither stored nor failed (yet)."""
        done = {index for index, _ in self.stored}
        done |= {e["index"] for e in self.errors if e["index"] is not None}
        return [i for i in range(self.requested) if i not in done]

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000

    def log_fields(self) -> dict[str, Any]:
        usage = self.usage
        return {
            "chat": self.chat.kind.value if self.chat else None,
            "error_codes": sorted({str(e["code"]) for e in self.errors}),
            "references": self.references,
            "references_sent": self.references_sent,
            "duration_ms": round(self.elapsed_ms(), 1),
            "first_image_ms": _round(self.first_image_ms),
            "vision_ms": _round(self.vision_ms),
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
        }


class Generator:
    """The part of generation shared by a whole process: the provider, the bound on image calls
    in flight, and where images are stored. Built once by the app."""

    def __init__(
        self,
        provider: ImageProvider,
        storage: BlobStorage,
        files: FileReleaser,
        limits: ImageLimits,
        defaults: ImageDefaults,
        concurrency: int,
        budget_seconds: float = 600,
        vision_budget_seconds: float = 70,
        *,
        temporaries: Temporaries,
        decodes: DecodeSlots,
    ) -> None:
        self.provider = provider
        self.decodes = decodes
        """The process's decode slots, shared with uploads: every image decoded takes one."""
        self.budget_seconds = budget_seconds
        """The longest a generation may take: its calls' timeouts and rate-limit waits."""
        self.vision_budget_seconds = vision_budget_seconds
        """The longest a vision call (or a models listing) may take, with its retries."""
        self.storage = storage
        self.temporaries = temporaries
        """Where an image is written to be checked before it is stored."""
        self.files = files
        self.limits = limits
        self.defaults = defaults
        self.calls = asyncio.Semaphore(concurrency)
        self.today: Callable[[], date] = date.today
        """Today's date, for models' shutdown dates."""
        self._running: set[asyncio.Task[Any]] = set()
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

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a running generation until it ends, whatever happens to its request."""
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def drain(self, seconds: float) -> None:
        """Let running generations finish; cancel (and record as CANCELLED) what outlasts
        `seconds`."""
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


class Sweep:
    """Records as FAILED (`INTERRUPTED`) the generations no process will finish: those whose
    process stopped (a crash, a kill) without recording them.

    No process works on a generation longer than the generation budget, plus the drain at
    shutdown: a generation still unfinished well after that is abandoned, whichever process
    started it, so several processes may sweep the same database safely.
    """

    def __init__(self, store: StaleGenerations, generator: Generator, drain_seconds: float) -> None:
        self._store = store
        self.stale_after = timedelta(
            seconds=generator.budget_seconds + drain_seconds + SWEEP_MARGIN_SECONDS
        )

    async def once(self, now: datetime | None = None) -> list[int]:
        """Sweep now; the ids of the generations recorded as interrupted."""
        now = now or utcnow()
        error: dict[str, object] = {
            "index": None,
            "code": ErrorCode.INTERRUPTED.value,
            "message": INTERRUPTED,
        }
        ids = await self._store.interrupt(now - self.stale_after, now, [error])
        if ids:
            log.warning(
                "unfinished generations interrupted",
                extra={"generation_ids": ids, "count": len(ids)},
            )
        return ids

    async def forever(self, interval_seconds: float) -> None:
        """Sweep at once, then every `interval_seconds`, until cancelled."""
        while True:
            try:
                await self.once()
            except Exception:  # the database may be away for a while: try again later
                log.exception("the sweep of unfinished generations failed")
            await asyncio.sleep(interval_seconds)


class GenerationService:
    def __init__(self, uow: UnitOfWork, generator: Generator) -> None:
        self._uow = uow
        self._gen = generator

    @property
    def generator(self) -> Generator:
        return self._gen

    async def generate(self, request: GenerationRequest) -> Generated:
        """Prepare and run a generation. The work goes on to its end even if the caller is
        cancelled (a closed connection, a timeout), so its record is never left RUNNING."""
        # Prepared inside the task too: a request cancelled just after the message is saved
        # cannot leave its generation QUEUED.
        task = asyncio.create_task(self._prepare_and_run(request))
        self._gen.keep(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                # The work was stopped (the server is shutting down), not this request.
                raise DomainError(ErrorCode.CANCELLED, INTERRUPTED) from None
            raise

    async def _prepare_and_run(self, request: GenerationRequest) -> Generated:
        return await self.run(await self.prepare(request))

    async def prepare(self, request: GenerationRequest) -> int:
        """Check the request, then save the message and a QUEUED generation; their id."""
        prompt, attached = check_message(request.prompt, request.reference_ids)
        if not 1 <= request.image_count <= MAX_IMAGES:
            raise DomainError(
                ErrorCode.INVALID, f"imageCount must be 1 to {MAX_IMAGES}", ["imageCount"]
            )
        spec = self._spec(request.model)
        size = self._choice(request.size, self._gen.defaults.size, spec.sizes, "size")
        quality = self._choice(
            request.quality, self._gen.defaults.quality, spec.qualities, "quality"
        )
        async with self._uow() as repo:
            message, owner = await record_message(
                repo, request.chat, prompt, request.with_context, attached
            )
            assert message.id is not None
            assert owner.video_id is not None
            generation = Generation(
                message_id=message.id,
                video_id=owner.video_id,
                status=GenerationStatus.QUEUED.value,
                provider=self._gen.provider.name,
                model=spec.name,
                size=size,
                quality=quality,
                requested_count=request.image_count,
            )
            await repo.add(generation)
            await repo.commit()
        assert generation.id is not None
        return generation.id

    def _spec(self, requested: str | None) -> ImageModelSpec:
        if self._gen.provider.placeholder:
            requested = requested if requested != self._gen.provider.name else None
            default = image_model(self._gen.provider.name)
        else:
            default = image_model(self._gen.defaults.image_model)
        if requested is None or requested == default.name:
            return default
        usable = {spec.name: spec for spec in self._gen.models(self._gen.today())}
        if requested not in usable:
            raise DomainError(
                ErrorCode.INVALID,
                f"unknown image model {requested[:100]!r}; see `imageModels`",
                ["model"],
            )
        return usable[requested]

    @staticmethod
    def _choice(given: str | None, default: str, allowed: Sequence[str], name: str) -> str:
        if given is None:
            return default if default in allowed else allowed[0]
        if given not in allowed:
            raise DomainError(
                ErrorCode.INVALID, f"{name} must be one of {', '.join(allowed)}", [name]
            )
        return given

    async def run(self, generation_id: int) -> Generated:
        """Do the work of a prepared generation and record it; returns what it made. A
        generation runs once: a second `run`, even at the same time, is refused."""
        outcome = _Outcome(started=time.monotonic())
        try:
            async with self._uow() as repo:
                if not await repo.start_generation(generation_id, utcnow()):
                    found = await repo.get(Generation, generation_id)
                    if found is None:
                        raise NotFound("generation")
                    raise DomainError(
                        ErrorCode.INVALID, f"the generation is {found.status.lower()} already"
                    )
                generation = await repo.get(Generation, generation_id)
                assert generation is not None
                outcome.requested = generation.requested_count
                message = await repo.get(Message, generation.message_id)
                assert message is not None
                assert message.id is not None
                outcome.chat = _chat_of(message)
                context_text, caption = await self._chat_facts(repo, message, outcome.chat)
                attachments = await repo.attachments_of(message.id)
                await repo.commit()
            return await self._work(
                _Job(generation, message, context_text, caption, attachments), outcome
            )
        except asyncio.CancelledError:
            await self._cut_short(generation_id, outcome)
            raise
        except DomainError:
            raise
        except Exception:
            await self._abandon(generation_id, outcome, GenerationStatus.FAILED)
            raise

    async def _cut_short(self, generation_id: int, outcome: _Outcome) -> None:
        """Record a generation stopped before its end (the server is shutting down): the images
        already made and stored are paid for, so they are kept (PARTIAL, the rest CANCELLED);
        with none, it is CANCELLED."""
        if outcome.stored and outcome.final_prompt is not None and not outcome.finishing:
            outcome.fail(outcome.unaccounted(), ErrorCode.CANCELLED, "stopped by a shutdown")
            try:
                await self._finish(generation_id, outcome.final_prompt, outcome)
                return
            except Exception:
                log.exception("the images of a generation cut short could not be recorded")
        await self._abandon(generation_id, outcome, GenerationStatus.CANCELLED)

    async def _chat_facts(
        self, repo: Repository, message: Message, chat: Place
    ) -> tuple[str | None, str]:
        """The context text the prompt carries (if any), and a caption for placeholders."""
        caption = "Context"
        if chat.kind is PlaceKind.FRAME:
            frame = await repo.get(Frame, chat.id)
            caption = frame.title if frame is not None else ""
        elif chat.kind is PlaceKind.MAIN_CHAT:
            main_chat = await repo.get(MainChat, chat.id)
            caption = main_chat.name if main_chat is not None else ""
        if not includes_context(chat.kind, message.with_context):
            return None, caption
        context = await repo.context_of_video(message.video_id)
        return (context.content if context is not None else None), caption

    async def _work(self, job: _Job, outcome: _Outcome) -> Generated:
        """Make the images within the generation's deadline; what is not made by then is
        reported as timed out, and what was made is kept."""
        generation = job.generation
        try:
            async with asyncio.timeout(self._gen.budget_seconds):
                await self._make(job, outcome)
        except TimeoutError:
            seconds = round(self._gen.budget_seconds)
            outcome.fail(
                outcome.unaccounted(), ErrorCode.PROVIDER_TIMEOUT, f"no image within {seconds} s"
            )
        final_prompt = outcome.final_prompt or assemble_prompt(
            job.message.prompt, job.context_text, None
        )
        assert generation.id is not None
        return await self._finish(generation.id, final_prompt, outcome)

    async def _make(self, job: _Job, outcome: _Outcome) -> None:
        """Describe the references, assemble the prompt (kept in `outcome`) and make the
        images."""
        generation = job.generation
        references = await self._references(job.attachments, outcome)
        description: Description | None = None
        if references:
            vision_started = time.monotonic()
            description = await self._describe(references, outcome)
            outcome.vision_ms = (time.monotonic() - vision_started) * 1000
        final_prompt = assemble_prompt(
            job.message.prompt, job.context_text, description.text if description else None
        )
        outcome.final_prompt = final_prompt
        spec = image_model(generation.model)
        passed = list(references[: spec.max_reference_images])
        outcome.references, outcome.references_sent = len(references), len(passed)
        tasks = [
            asyncio.create_task(
                self._call(
                    ImageCall(
                        prompt=final_prompt,
                        model=spec.name,
                        count=count,
                        size=generation.size,
                        quality=generation.quality,
                        references=passed,
                        caption=job.caption,
                        first_index=first,
                    ),
                    spec,
                    outcome,
                )
            )
            for first, count in _split(generation.requested_count, spec.max_images_per_call)
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _references(self, attachments: list[Image], outcome: _Outcome) -> list[Reference]:
        """The attached images' bytes, made small enough to send (a lost one is reported)."""

        async def read(image: Image) -> Reference | None:
            try:
                data = await self._gen.storage.read(image.storage_key, url=image.url)
                data, content_type = await self._gen.decodes.run(
                    fit_for_model, data, image.content_type
                )
            except Exception as error:  # a lost file must not sink the generation
                log.warning(
                    "reference image unreadable",
                    extra={"image_id": image.id, "error": repr(error)},
                )
                outcome.fail([None], ErrorCode.NOT_FOUND, "a reference image could not be read")
                return None
            extension = content_type.rsplit("/", 1)[-1].replace("jpeg", "jpg")
            return Reference(data, content_type, f"reference-{image.id}.{extension}")

        found = await asyncio.gather(*(read(image) for image in attachments))
        return [reference for reference in found if reference is not None]

    async def _describe(self, references: list[Reference], outcome: _Outcome) -> Description | None:
        model = self._gen.defaults.vision_model
        try:
            description = await self._gen.provider.describe(references, DESCRIBE_REFERENCES, model)
        except ProviderError as error:
            code = FAILURE_CODES[error.failure]
            outcome.fail([None], code, f"the reference images could not be described: {error}")
            return None
        except Exception:  # as for an image call: the images can still be made without it
            log.exception("describing the reference images failed unexpectedly")
            outcome.fail(
                [None], ErrorCode.PROVIDER_ERROR, "the reference images could not be described"
            )
            return None
        outcome.add_usage(description.usage, vision_cost(description.model, description.usage))
        outcome.vision_model = description.model
        return description

    async def _call(self, call: ImageCall, spec: ImageModelSpec, outcome: _Outcome) -> None:
        indexes = list(range(call.first_index, call.first_index + call.count))
        try:
            async with self._gen.calls:
                result: CallResult = await self._gen.provider.generate(call)
        except ProviderError as error:
            outcome.fail(indexes, FAILURE_CODES[error.failure], error.message)
            if error.usage is not None:  # answered, without a usable image: billed all the same
                outcome.add_usage(error.usage, spec.estimate(error.usage, 0, call.quality))
            return
        except Exception:
            # A fault of ours or an answer nobody foresaw: it costs this call's images, not the
            # images other calls have made.
            log.exception("an image call failed unexpectedly", extra={"indexes": indexes})
            outcome.fail(indexes, ErrorCode.PROVIDER_ERROR, "the image call failed unexpectedly")
            return
        made = result.images[: call.count]
        outcome.add_usage(result.usage, spec.estimate(result.usage, len(made), call.quality))

        async def store(index: int, data: bytes) -> None:
            storing = asyncio.ensure_future(self._store(data))
            try:
                # Shielded: a put under way ends, and its file is then released (below), rather
                # than being left in storage unrecorded.
                stored = await asyncio.shield(storing)
            except asyncio.CancelledError:
                # Held like a generation, so that a drain waits for the put and its release.
                self._gen.keep(asyncio.ensure_future(self._release_late(storing)))
                raise
            except ImageRefused as refusal:
                outcome.fail([index], ErrorCode.PROVIDER_ERROR, f"unusable image: {refusal}")
                return
            except Exception:
                log.exception("a generated image could not be stored", extra={"index": index})
                outcome.fail([index], ErrorCode.STORAGE_FAILED, "the image could not be stored")
                return
            outcome.stored.append((index, stored))
            if outcome.first_image_ms is None:
                outcome.first_image_ms = outcome.elapsed_ms()

        # Checking, thumbnailing and storing run in threads: the images of a call go together.
        await asyncio.gather(
            *(store(index, produced.data) for index, produced in zip(indexes, made, strict=False))
        )
        missing = indexes[len(made) :]
        if missing:
            outcome.fail(missing, ErrorCode.PROVIDER_ERROR, "the provider returned fewer images")

    async def _release_late(self, storing: asyncio.Future[StoredImage]) -> None:
        """Release the file of an image stored after its generation stopped waiting for it."""
        try:
            stored = await storing
        except Exception:  # refused or failed: nothing was stored
            return
        await self._gen.files.release({stored.storage_key})

    async def _store(self, data: bytes) -> StoredImage:
        """Check the bytes as an upload is checked, then put them in blob storage."""
        path = await asyncio.to_thread(self._gen.temporaries.write, data, GENERATED_PREFIX)
        try:
            facts = await inspect_image_async(path, self._gen.limits, self._gen.decodes)
            blob = await self._gen.storage.put(
                path,
                checksum=facts.checksum,
                content_type=facts.content_type,
                thumbnail=facts.thumbnail,
            )
        finally:
            await asyncio.to_thread(path.unlink, True)
        return StoredImage.of(blob, facts, placeholder=self._gen.provider.placeholder)

    async def _finish(
        self,
        generation_id: int,
        final_prompt: str,
        outcome: _Outcome,
    ) -> Generated:
        """Record the images made, the final prompt and how it went, in one transaction."""
        chat = outcome.chat
        assert chat is not None
        stored = [item for _, item in sorted(outcome.stored, key=lambda pair: pair[0])]
        outcome.finishing = True  # once begun, a cut short never finishes it again
        generation: Generation | None = None
        try:
            async with self._uow() as repo:
                owner = await repo.owner_of(chat)
                if owner is not None:
                    # Read after the lock: a deletion of the chat is done, or waits for this.
                    await repo.lock_owner(owner)
                    generation = await repo.get(Generation, generation_id)
                message = await repo.get(Message, generation.message_id) if generation else None
                if generation is None or message is None or owner is None:
                    raise NotFound(chat.label)
                images = await add_images(repo, owner, chat, stored, message.id)
                message.final_prompt = final_prompt
                await repo.save(message)
                _record(generation, outcome, len(stored), _status_of(generation, len(stored)))
                await repo.save(generation)
                await repo.commit()
        except BaseException:
            await self._gen.files.release({item.storage_key for item in stored})
            if not isinstance(generation, Generation):
                self._log_gone(generation_id, outcome)
            raise
        error = None
        if not images:
            code, text = _summary(outcome)
            field = ["prompt"] if code is ErrorCode.CONTENT_REFUSED else None
            error = DomainError(code, text, field)
        _log(generation, outcome)
        return Generated(message=message, generation=generation, images=images, error=error)

    async def _abandon(
        self, generation_id: int, outcome: _Outcome, status: GenerationStatus
    ) -> None:
        """Record a generation cut short (cancelled, or failed unexpectedly) with what it had
        spent; its stored files go, as no image row holds them."""
        keys = {item.storage_key for _, item in outcome.stored}
        try:
            async with self._uow() as repo:
                generation = await repo.get(Generation, generation_id)
                if generation is not None and generation.status in _UNFINISHED:
                    _record(generation, outcome, 0, status)
                    await repo.save(generation)
                    message = await repo.get(Message, generation.message_id)
                    if message is not None and outcome.final_prompt is not None:
                        message.final_prompt = outcome.final_prompt  # what was sent, if anything
                        await repo.save(message)
                    await repo.commit()
                    _log(generation, outcome)
        except Exception:
            log.exception("a generation cut short could not be recorded")
        finally:
            await self._gen.files.release(keys)

    def _log_gone(self, generation_id: int, outcome: _Outcome) -> None:
        log.info(
            "generation finished",
            extra={"generation_id": generation_id, "status": "GONE", **outcome.log_fields()},
        )

    async def analyze(self, image_ids: Sequence[int], question: str) -> Analysis:
        """Answer a question about the owner's images with the vision model."""
        question = question.strip()
        if not question:
            raise DomainError(ErrorCode.BLANK, "question must not be blank", ["question"])
        if len(question) > QUESTION_MAX:
            raise DomainError(
                ErrorCode.TOO_LONG,
                f"question must be at most {QUESTION_MAX} characters",
                ["question"],
            )
        ids = list(dict.fromkeys(image_ids))
        if not ids:
            raise DomainError(ErrorCode.INVALID, "name at least one image", ["imageIds"])
        if len(ids) > MAX_ANALYZED:
            raise DomainError(
                ErrorCode.INVALID, f"at most {MAX_ANALYZED} images at once", ["imageIds"]
            )
        async with self._uow() as repo:
            images = [await repo.get(Image, image_id) for image_id in ids]
        if any(image is None for image in images):
            raise NotFound("image", ["imageIds"])
        references: list[Reference] = []
        for image in images:
            assert image is not None
            try:
                data = await self._gen.storage.read(image.storage_key, url=image.url)
                data, content_type = await self._gen.decodes.run(
                    fit_for_model, data, image.content_type
                )
            except FileNotFoundError:
                raise DomainError(
                    ErrorCode.NOT_FOUND, "an image's file is missing", ["imageIds"]
                ) from None
            except Exception:
                log.exception("an image could not be read", extra={"image_id": image.id})
                raise DomainError(
                    ErrorCode.STORAGE_FAILED, "an image could not be read", ["imageIds"]
                ) from None
            references.append(Reference(data, content_type, f"image-{image.id}"))
        model = self._gen.defaults.vision_model
        try:
            described = await self._gen.provider.describe(references, question, model)
        except ProviderError as error:
            raise provider_error(error) from None
        return Analysis(
            text=described.text,
            model=described.model,
            placeholder=self._gen.provider.placeholder,
            usage=described.usage,
            estimated_cost_usd=vision_cost(described.model, described.usage),
        )

    async def status(self) -> ProviderStatus:
        """Whether generation is configured, and the state of the models in use."""
        defaults, provider = self._gen.defaults, self._gen.provider
        if provider.placeholder:
            offline = ModelState(provider.name, True, None)
            return ProviderStatus(False, provider.name, offline, offline, None)
        error: DomainError | None = None
        listed: dict[str, RemoteModel] | None = None
        try:
            listed = {model.id: model for model in await self._gen.remote_models()}
        except ProviderError as failure:
            error = provider_error(failure)

        def state(name: str) -> ModelState:
            if listed is None:
                return ModelState(name, None, image_model(name).shutdown_date)
            remote = listed.get(name)
            known = image_model(name).shutdown_date if image_model(name).known else None
            return ModelState(name, remote is not None, remote.shutdown_date if remote else known)

        return ProviderStatus(
            True, provider.name, state(defaults.image_model), state(defaults.vision_model), error
        )


def _split(count: int, per_call: int) -> list[tuple[int, int]]:
    """(first index, images) of each call for `count` images at most `per_call` a call."""
    per_call = max(1, per_call)
    return [(first, min(per_call, count - first)) for first in range(0, count, per_call)]


def _chat_of(message: Message) -> Place:
    if message.frame_id is not None:
        return Place(PlaceKind.FRAME, message.frame_id)
    if message.context_id is not None:
        return Place(PlaceKind.CONTEXT, message.context_id)
    assert message.main_chat_id is not None
    return Place(PlaceKind.MAIN_CHAT, message.main_chat_id)


_UNFINISHED = (GenerationStatus.QUEUED.value, GenerationStatus.RUNNING.value)


def _status_of(generation: Generation, completed: int) -> GenerationStatus:
    if completed == generation.requested_count:
        return GenerationStatus.SUCCEEDED
    return GenerationStatus.PARTIAL if completed else GenerationStatus.FAILED


def _record(
    generation: Generation, outcome: _Outcome, completed: int, status: GenerationStatus
) -> None:
    generation.status = status.value
    generation.completed_count = completed
    generation.errors = sorted(
        outcome.errors, key=lambda e: (e["index"] is not None, e["index"] or 0)
    )
    generation.vision_model = outcome.vision_model
    usage = outcome.usage
    if usage is not None:
        generation.input_text_tokens = usage.input_text_tokens
        generation.input_image_tokens = usage.input_image_tokens
        generation.output_tokens = usage.output_tokens
    generation.estimated_cost_usd = round(outcome.cost, 6) if outcome.cost is not None else None
    generation.finished_at = utcnow()


def _log(generation: Generation, outcome: _Outcome) -> None:
    """The one line every generation writes when it ends."""
    log.info(
        "generation finished",
        extra={
            "generation_id": generation.id,
            "message_id": generation.message_id,
            "status": generation.status,
            "provider": generation.provider,
            "model": generation.model,
            "size": generation.size,
            "quality": generation.quality,
            "requested": generation.requested_count,
            "completed": generation.completed_count,
            "failed": generation.requested_count - generation.completed_count,
            "estimated_cost_usd": generation.estimated_cost_usd,
            **outcome.log_fields(),
        },
    )


def _summary(outcome: _Outcome) -> tuple[ErrorCode, str]:
    """The error to tell when nothing was made: that of the first image (by position) that
    failed, whichever call failed first."""
    per_image = [e for e in outcome.errors if e["index"] is not None] or outcome.errors
    if not per_image:
        return ErrorCode.PROVIDER_ERROR, "no image was made"
    first = min(per_image, key=lambda e: e["index"] or 0)
    return ErrorCode(first["code"]), str(first["message"])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
