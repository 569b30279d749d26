"""Generation as the API asks for it: accept a request, run it as a job, record each image as it
is stored, cancel it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from storyframe.db.tables import Frame, Generation, Image, MainChat, Message
from storyframe.domain.errors import DomainError, ErrorCode, NotFound
from storyframe.domain.image_provider import Usage
from storyframe.domain.jobs import EventKind, GenerationEvent, Preview, Ticket
from storyframe.domain.model_catalogue import (
    ImageModelSpec,
    image_model,
)
from storyframe.domain.places import Place, PlaceKind, chat_of
from storyframe.domain.ports import (
    Repository,
    UnitOfWork,
)
from storyframe.services.chats import check_message, record_message
from storyframe.services.generation.generator import Generator
from storyframe.services.generation.outcome import (
    UNFINISHED,
    Job,
    Outcome,
    add_to_record,
    close_record,
    log_finished,
    status_of,
    summary,
)
from storyframe.services.generation.pipeline import ImageMaker, Slots
from storyframe.services.generation.types import (
    CUT_SHORT_SECONDS,
    INTERRUPTED,
    MAX_IMAGES,
    Analysis,
    Generated,
    GenerationRequest,
    GenerationStatus,
    ImageFailure,
    ProviderStatus,
)
from storyframe.services.generation.vision import analyze, provider_status
from storyframe.services.image_places import StoredImage, add_images
from storyframe.services.prompts import assemble_prompt, includes_context

log = logging.getLogger("storyframe.generation")

MAX_ATTEMPTS = 2
"""How many times a generation's unfinished images are asked for: a crash loses a call's result
(and OpenAI cannot give it back), so an image is paid for at most twice."""
IDEMPOTENCY_KEY_MAX = 255
FINAL = {status.value for status in GenerationStatus} - set(UNFINISHED)


@dataclass(frozen=True, slots=True)
class Submitted:
    """An accepted request: its message and generation, and whether they are those of an
    earlier request with the same idempotency key."""

    message: Message
    generation: Generation
    replayed: bool = False


class GenerationService:
    def __init__(self, uow: UnitOfWork, generator: Generator) -> None:
        self._uow = uow
        self._gen = generator
        self._images = ImageMaker(generator)

    @property
    def generator(self) -> Generator:
        return self._gen

    # -- accepting -------------------------------------------------------------------------

    async def submit(
        self,
        request: GenerationRequest,
        idempotency_key: str | None = None,
        wait_seconds: float | None = None,
    ) -> Submitted:
        """Save the message and a QUEUED generation and hand it to the job queue; with
        `wait_seconds`, wait that long at most for it to end. The same idempotency key with
        the same request gives back the first request's message and generation, and runs
        nothing; with another request it is refused."""
        if wait_seconds is None or self._gen.events is None:
            return await self._accept(request, idempotency_key)
        async with self._gen.events.subscribe(lambda e: e.kind is EventKind.FINISHED) as stream:
            submitted = await self._accept(request, idempotency_key)
            generation = submitted.generation
            if generation.status in FINAL:
                return submitted
            assert generation.id is not None
            try:
                async with asyncio.timeout(wait_seconds):
                    async for event in stream:
                        if event.generation_id == generation.id:
                            break
            except TimeoutError:
                pass
        return await self.current(generation.id)

    async def _accept(self, request: GenerationRequest, key: str | None) -> Submitted:
        submitted = await self._record_request(request, key)
        generation = submitted.generation
        assert generation.id is not None
        assert generation.owner_id is not None
        if not submitted.replayed:
            if self._gen.jobs is not None:
                self._gen.jobs.enqueue(Ticket(generation.id, generation.owner_id))
            self._publish(EventKind.QUEUED, generation)
        return submitted

    async def prepare(self, request: GenerationRequest, idempotency_key: str | None = None) -> int:
        """Check the request, then save the message and a QUEUED generation; their id. Nothing
        runs it: `submit` hands it to the job queue."""
        generation = (await self._record_request(request, idempotency_key)).generation
        assert generation.id is not None
        return generation.id

    async def _record_request(self, request: GenerationRequest, key: str | None) -> Submitted:
        prompt, attached = check_message(request.prompt, request.reference_ids)
        if not 1 <= request.image_count <= MAX_IMAGES:
            raise DomainError(
                ErrorCode.INVALID, f"imageCount must be 1 to {MAX_IMAGES}", ["imageCount"]
            )
        if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX and key.strip()):
            raise DomainError(
                ErrorCode.INVALID,
                f"idempotencyKey must be 1 to {IDEMPOTENCY_KEY_MAX} characters, not blank",
                ["idempotencyKey"],
            )
        spec = self._spec(request.model)
        size = self._choice(request.size, self._gen.defaults.size, spec.sizes, "size")
        quality = self._choice(
            request.quality, self._gen.defaults.quality, spec.qualities, "quality"
        )
        digest = _digest(request, attached, spec.name, size, quality) if key else None
        async with self._uow() as repo:
            if key is not None:
                replayed = await self._replay(repo, key, digest)
                if replayed is not None:
                    return replayed
            message, owner = await record_message(
                repo, request.chat, prompt, request.with_context, attached
            )
            assert message.id is not None
            assert owner.video_id is not None
            generation = Generation(
                message_id=message.id,
                video_id=owner.video_id,
                owner_id=repo.owner_id,
                status=GenerationStatus.QUEUED.value,
                provider=self._gen.provider.name,
                model=spec.name,
                size=size,
                quality=quality,
                requested_count=request.image_count,
                created_at=self._gen.clock(),
                idempotency_key=key,
                request_hash=digest,
            )
            await repo.add(generation)
            await repo.commit()
        return Submitted(message, generation)

    async def _replay(self, repo: Repository, key: str, digest: str | None) -> Submitted | None:
        """The earlier request's message and generation for a live key; None when the key is
        new, or has expired (it is then given up, to be used again)."""
        earlier = await repo.generation_for_key(key)
        if earlier is None:
            return None
        if earlier.created_at <= self._gen.clock() - self._gen.idempotency_ttl:
            earlier.idempotency_key = None
            await repo.save(earlier)
            return None
        if earlier.request_hash != digest:
            raise DomainError(
                ErrorCode.IDEMPOTENCY_CONFLICT,
                "this idempotency key was used with another request",
                ["idempotencyKey"],
            )
        message = await repo.get(Message, earlier.message_id)
        if message is None:  # its chat was deleted since
            raise NotFound("message")
        return Submitted(message, earlier, replayed=True)

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

    async def current(self, generation_id: int) -> Submitted:
        """The generation and its message as they stand."""
        async with self._uow() as repo:
            generation = await repo.get(Generation, generation_id)
            message = await repo.get(Message, generation.message_id) if generation else None
        if generation is None or message is None:
            raise NotFound("generation")
        return Submitted(message, generation)

    # -- cancelling ------------------------------------------------------------------------

    async def cancel(self, generation_id: int) -> Generation:
        """Stop a queued or running generation. The images it has stored stay: it ends
        CANCELLED, or PARTIAL with some. One that has ended is refused."""
        async with self._uow() as repo:
            generation = await repo.get(Generation, generation_id)
            if generation is None:
                raise NotFound("generation", ["id"])
            if generation.status not in UNFINISHED:
                raise DomainError(
                    ErrorCode.INVALID,
                    f"the generation has ended ({generation.status.lower()})",
                    ["id"],
                )
            generation.cancel_requested = True
            queued = generation.status == GenerationStatus.QUEUED.value
            if queued:  # nothing runs it: it ends here
                done = await self._slots_done(repo, generation)
                left = [i for i in range(generation.requested_count) if i not in done]
                add_to_record(generation, None, None, _failed(left, ErrorCode.CANCELLED))
                close_record(generation, status_of(generation), self._gen.clock(), Outcome(0))
            await repo.save(generation)
            await repo.commit()
        if self._gen.jobs is not None:
            self._gen.jobs.cancel(generation_id)
        if queued:
            self._publish(EventKind.FINISHED, generation)
        return generation

    # -- running ---------------------------------------------------------------------------

    async def run_job(self, generation_id: int) -> None:
        """Run a generation the job queue handed over; one another process has taken, or that
        was cancelled meanwhile, is left alone."""
        try:
            await self.run(generation_id)
        except DomainError as refused:
            log.info(
                "generation not run",
                extra={"generation_id": generation_id, "reason": refused.message},
            )

    async def run(self, generation_id: int) -> Generated:
        """Do the work of a queued generation and record it; returns what this run made. A
        generation runs once at a time: a second `run`, even at the same time, is refused.
        Stopped by cancellation, it records itself as cancelled when that was asked for, and
        otherwise (a shutdown) hands its unfinished images back to the queue."""
        outcome = Outcome(started=time.monotonic())
        job, recorder = await self._claim(generation_id, outcome)
        generation = job.generation
        finishing: asyncio.Task[Generated] | None = None
        try:
            if generation.attempts > MAX_ATTEMPTS:
                # This process took over from processes that stopped while running it.
                failures = _failed(outcome.unaccounted(), ErrorCode.INTERRUPTED, INTERRUPTED)
                outcome.errors.extend(failures)
                await recorder.made([], failures, None, None)
            else:
                await self._work(job, outcome, recorder)
            finishing = asyncio.create_task(self._finish(job, outcome, recorder))
            return await asyncio.shield(finishing)
        except asyncio.CancelledError:
            if finishing is None:
                await asyncio.shield(self._stopped(job, outcome))
            else:  # its end is being written: let it be, rather than hand it back as well
                await asyncio.wait([finishing])
            raise
        except DomainError:
            raise
        except Exception:
            await asyncio.shield(self._abandon(job, outcome))
            raise

    async def _claim(self, generation_id: int, outcome: Outcome) -> tuple[Job, _Recorder]:
        async with self._uow() as repo:
            if not await repo.start_generation(generation_id, self._gen.clock()):
                found = await repo.get(Generation, generation_id)
                if found is None:
                    raise NotFound("generation")
                raise DomainError(
                    ErrorCode.INVALID, f"the generation is {found.status.lower()} already"
                )
            generation = await repo.get(Generation, generation_id)
            assert generation is not None
            message = await repo.get(Message, generation.message_id)
            assert message is not None
            assert message.id is not None
            chat = chat_of(message)
            context_text, caption = await self._chat_facts(repo, message, chat)
            attachments = await repo.attachments_of(message.id)
            done = await self._slots_done(repo, generation)
            await repo.commit()
        outcome.chat = chat
        outcome.requested = generation.requested_count
        outcome.earlier = done
        job = Job(generation, message, context_text, caption, attachments, message.final_prompt)
        self._publish(EventKind.STARTED, generation)
        return job, _Recorder(self, job, chat)

    async def _slots_done(self, repo: Repository, generation: Generation) -> set[int]:
        """The positions an earlier attempt stored or failed."""
        done = {f["index"] for f in generation.errors if isinstance(f.get("index"), int)}
        image_ids = await repo.image_ids_of_messages([generation.message_id])
        for image_id in image_ids:
            image = await repo.get(Image, image_id)
            if image is not None and image.slot is not None:
                done.add(image.slot)
        return {index for index in done if isinstance(index, int)}

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

    async def _work(self, job: Job, outcome: Outcome, recorder: _Recorder) -> None:
        """Make the images within the generation's deadline; what is not made by then is
        reported as timed out, and what was made is kept."""
        try:
            async with asyncio.timeout(self._gen.budget_seconds):
                await self._images.make(job, outcome, recorder, outcome.unaccounted())
        except TimeoutError:
            seconds = round(self._gen.budget_seconds)
            failures = _failed(
                outcome.unaccounted(), ErrorCode.PROVIDER_TIMEOUT, f"no image within {seconds} s"
            )
            outcome.errors.extend(failures)
            await recorder.made([], failures, None, None)

    async def _finish(self, job: Job, outcome: Outcome, recorder: _Recorder) -> Generated:
        """Record how the generation ended, with the prompt that was sent."""
        final_prompt = outcome.final_prompt or assemble_prompt(
            job.message.prompt, job.context_text, None
        )
        generation_id = job.generation.id
        assert generation_id is not None
        async with self._uow() as repo:
            generation = await repo.get(Generation, generation_id)
            message = await repo.get(Message, generation.message_id) if generation else None
            if generation is None or message is None:
                self._log_gone(generation_id, outcome)
                # Gone with its chat: a request waiting for it, and its subscribers, stop.
                self._publish(EventKind.FINISHED, job.generation)
                raise NotFound(recorder.chat.label)
            if generation.status == GenerationStatus.RUNNING.value:
                message.final_prompt = message.final_prompt or final_prompt
                await repo.save(message)
                close_record(generation, status_of(generation), self._gen.clock(), outcome)
                await repo.save(generation)
                await repo.commit()
                log_finished(generation, outcome)
            # Ended here, or meanwhile (swept): either way it is final now.
            self._publish(EventKind.FINISHED, generation)
        error = None
        if generation.completed_count == 0:
            failures = [ImageFailure.of_json(stored) for stored in generation.errors]
            code, text = summary(failures)
            field = ["prompt"] if code is ErrorCode.CONTENT_REFUSED else None
            error = DomainError(code, text, field)
        return Generated(message, generation, recorder.images, error)

    async def _stopped(self, job: Job, outcome: Outcome) -> None:
        """Record a run stopped from outside: cancelled by its user (it ends, keeping what it
        stored), or by a shutdown (its unfinished images go back to the queue)."""
        generation_id = job.generation.id
        assert generation_id is not None
        if outcome.late:  # images still being stored: recorded while the run is RUNNING
            await asyncio.wait(outcome.late, timeout=CUT_SHORT_SECONDS)
        try:
            async with self._uow() as repo:
                generation = await repo.get(Generation, generation_id)
                if generation is None or generation.status != GenerationStatus.RUNNING.value:
                    return
                if generation.cancel_requested:
                    failures = _failed(outcome.unaccounted(), ErrorCode.CANCELLED)
                    outcome.errors.extend(failures)
                    add_to_record(generation, None, None, failures)
                    close_record(generation, status_of(generation), self._gen.clock(), outcome)
                    await self._keep_prompt(repo, generation, outcome)
                    kind = EventKind.FINISHED
                else:
                    generation.status = GenerationStatus.QUEUED.value
                    generation.attempts = max(0, generation.attempts - 1)
                    generation.heartbeat_at = None
                    kind = EventKind.QUEUED
                await repo.save(generation)
                await repo.commit()
        except Exception:
            log.exception("a generation stopped could not be recorded")
            return
        self._publish(kind, generation)
        if kind is EventKind.FINISHED:
            log_finished(generation, outcome)

    async def _abandon(self, job: Job, outcome: Outcome) -> None:
        """Record a generation that failed unexpectedly, keeping what it stored."""
        generation_id = job.generation.id
        assert generation_id is not None
        try:
            async with self._uow() as repo:
                generation = await repo.get(Generation, generation_id)
                if generation is None or generation.status not in UNFINISHED:
                    self._publish(EventKind.FINISHED, generation or job.generation)
                    return
                failures = _failed(
                    outcome.unaccounted(), ErrorCode.PROVIDER_ERROR, "the generation failed"
                )
                add_to_record(generation, None, None, failures)
                status = status_of(generation)
                close_record(generation, status, self._gen.clock(), outcome)
                await self._keep_prompt(repo, generation, outcome)
                await repo.save(generation)
                await repo.commit()
        except Exception:
            log.exception("a generation that failed could not be recorded")
            return
        self._publish(EventKind.FINISHED, generation)
        log_finished(generation, outcome)

    @staticmethod
    async def _keep_prompt(repo: Repository, generation: Generation, outcome: Outcome) -> None:
        if outcome.final_prompt is None:
            return
        message = await repo.get(Message, generation.message_id)
        if message is not None and message.final_prompt is None:
            message.final_prompt = outcome.final_prompt  # what was sent
            await repo.save(message)

    def _log_gone(self, generation_id: int, outcome: Outcome) -> None:
        log.info(
            "generation finished",
            extra={"generation_id": generation_id, "status": "GONE", **outcome.log_fields()},
        )

    def _publish(
        self,
        kind: EventKind,
        generation: Generation,
        index: int | None = None,
        image_id: int | None = None,
        preview: Preview | None = None,
    ) -> None:
        assert generation.id is not None
        assert generation.owner_id is not None
        self._gen.publish(
            GenerationEvent(
                kind,
                generation.id,
                generation.video_id,
                generation.owner_id,
                index=index,
                image_id=image_id,
                preview=preview,
            )
        )

    # -- asking about images ---------------------------------------------------------------

    async def analyze(self, image_ids: Sequence[int], question: str) -> Analysis:
        """Answer a question about the owner's images with the vision model."""
        return await analyze(self._uow, self._gen, image_ids, question)

    async def status(self) -> ProviderStatus:
        """Whether generation is configured, and the state of the models in use."""
        return await provider_status(self._gen)


class _Recorder(Slots):
    """Records each call's images in the chat as soon as they are stored, and tells the
    subscribers."""

    def __init__(self, service: GenerationService, job: Job, chat: Place) -> None:
        self._service = service
        self._job = job
        self.chat = chat
        self.images: list[Image] = []

    async def prompt(
        self,
        final_prompt: str,
        vision_model: str | None,
        usage: Usage | None,
        cost: float | None,
        failures: Sequence[ImageFailure],
    ) -> None:
        generation_id = self._job.generation.id
        assert generation_id is not None
        async with self._service._uow() as repo:
            generation = await repo.get(Generation, generation_id)
            message = await repo.get(Message, self._job.message.id or 0)
            if generation is None or message is None:
                return
            if generation.status != GenerationStatus.RUNNING.value:
                return  # ended meanwhile (swept)
            message.final_prompt = final_prompt
            await repo.save(message)
            if vision_model is not None:
                generation.vision_model = vision_model
            add_to_record(generation, usage, cost, failures)
            await repo.save(generation)
            await repo.commit()

    async def preview(self, index: int, preview: Preview) -> None:
        self._service._publish(EventKind.PREVIEW, self._job.generation, index, preview=preview)

    async def made(
        self,
        stored: Sequence[tuple[int, StoredImage]],
        failures: Sequence[ImageFailure],
        usage: Usage | None,
        cost: float | None,
    ) -> None:
        generation_id = self._job.generation.id
        assert generation_id is not None
        keys = {item.storage_key for _, item in stored}
        images: list[Image] = []
        try:
            async with self._service._uow() as repo:
                owner = await repo.owner_of(self.chat)
                if owner is not None:
                    # Read after the lock: a deletion of the chat is done, or waits for this.
                    await repo.lock_owner(owner)
                generation = await repo.get(Generation, generation_id)
                if owner is None or generation is None:
                    return  # the chat is gone, and the generation with it
                if generation.status != GenerationStatus.RUNNING.value:
                    return  # ended meanwhile (swept): nothing more goes in
                if stored:
                    slotted = [replace(item, slot=index) for index, item in stored]
                    images = await add_images(repo, owner, self.chat, slotted, self._job.message.id)
                add_to_record(generation, usage, cost, failures, completed=len(images))
                await repo.save(generation)
                await repo.commit()
                keys.clear()
        finally:
            if keys:  # not recorded: no image row holds the files
                await self._service.generator.media.files.release(keys)
        self.images.extend(images)
        for (index, _), image in zip(stored, images, strict=True):
            self._service._publish(EventKind.IMAGE_STORED, generation, index, image.id)
        for failure in failures:
            if failure.index is not None:
                self._service._publish(EventKind.IMAGE_FAILED, generation, failure.index)


def _failed(
    indexes: Sequence[int], code: ErrorCode, message: str | None = None
) -> list[ImageFailure]:
    text = message or ("cancelled" if code is ErrorCode.CANCELLED else code.value.lower())
    return [ImageFailure(index, code, text) for index in indexes]


def _digest(
    request: GenerationRequest, attached: Sequence[int], model: str, size: str, quality: str
) -> str:
    """What a request asks, as a digest: two requests that would make the same images match."""
    asked = {
        "chat": [request.chat.kind.key, request.chat.id],
        "prompt": request.prompt.strip(),
        "imageCount": request.image_count,
        "references": list(attached),
        "withContext": request.with_context and request.chat.kind is PlaceKind.FRAME,
        "model": model,
        "size": size,
        "quality": quality,
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
