"""Generation as the API asks for it: accept a request, run it as a job, record each image as it
is stored, cancel it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial

from storyframe.db.tables import Frame, Generation, Image, MainChat, Message
from storyframe.domain.errors import DomainError, ErrorCode, NotFound
from storyframe.domain.jobs import EventKind, GenerationEvent, Ticket, is_generation
from storyframe.domain.places import Place, PlaceKind, chat_of
from storyframe.domain.ports import (
    Repository,
    UnitOfWork,
)
from storyframe.services.generation.generator import Generator
from storyframe.services.generation.outcome import (
    UNFINISHED,
    Job,
    Outcome,
    add_to_record,
    close_record,
    log_finished,
    nothing_made,
    status_of,
)
from storyframe.services.generation.pipeline import ImageMaker
from storyframe.services.generation.recorder import Recorder
from storyframe.services.generation.requests import Requests, Submitted
from storyframe.services.generation.types import (
    CUT_SHORT_SECONDS,
    INTERRUPTED,
    Analysis,
    Generated,
    GenerationRequest,
    GenerationStatus,
    ImageFailure,
    ProviderStatus,
)
from storyframe.services.generation.vision import analyze, provider_status
from storyframe.services.prompts import assemble_prompt, includes_context

log = logging.getLogger("storyframe.generation")

MAX_ATTEMPTS = 2
"""How many times a generation's unfinished images are asked for: a crash loses a call's result
(and OpenAI cannot give it back), so an image is paid for at most twice."""
FINAL = {status.value for status in GenerationStatus} - set(UNFINISHED)


class GenerationService:
    def __init__(self, uow: UnitOfWork, generator: Generator) -> None:
        self._uow = uow
        self._gen = generator
        self._images = ImageMaker(generator)
        self._requests = Requests(uow, generator)

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
        finished = partial(is_generation, kind=EventKind.FINISHED)
        async with self._gen.events.subscribe(finished) as stream:
            submitted = await self._accept(request, idempotency_key)
            generation = submitted.generation
            if generation.status in FINAL:
                return submitted
            assert generation.id is not None
            try:
                async with asyncio.timeout(wait_seconds):
                    async for event in stream:
                        if (
                            isinstance(event, GenerationEvent)
                            and event.generation_id == generation.id
                        ):
                            break
            except TimeoutError:
                pass
        return await self.current(generation.id)

    async def _accept(self, request: GenerationRequest, key: str | None) -> Submitted:
        submitted = await self._requests.record(request, key)
        generation = submitted.generation
        assert generation.id is not None
        assert generation.owner_id is not None
        if not submitted.replayed:
            if self._gen.jobs is not None:
                self._gen.jobs.enqueue(Ticket(generation.id, generation.owner_id))
            self._gen.announce(EventKind.QUEUED, generation)
        return submitted

    async def prepare(self, request: GenerationRequest, idempotency_key: str | None = None) -> int:
        """Check the request, then save the message and a QUEUED generation; their id. Nothing
        runs it: `submit` hands it to the job queue."""
        generation = (await self._requests.record(request, idempotency_key)).generation
        assert generation.id is not None
        return generation.id

    async def current(self, generation_id: int) -> Submitted:
        """The generation and its message as they stand."""
        return await self._requests.current(generation_id)

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
        # whoever runs it, in whichever process, hears it at once (and so do subscribers)
        self._gen.announce(EventKind.FINISHED if queued else EventKind.CANCEL_REQUESTED, generation)
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

    async def _claim(self, generation_id: int, outcome: Outcome) -> tuple[Job, Recorder]:
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
        self._gen.announce(EventKind.STARTED, generation)
        return job, Recorder(self._uow, self._gen, job, chat)

    async def _slots_done(self, repo: Repository, generation: Generation) -> set[int]:
        """The positions an earlier attempt stored or failed."""
        if not (generation.completed_count or generation.errors):
            return set()  # nothing done yet: no image to look for
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

    async def _work(self, job: Job, outcome: Outcome, recorder: Recorder) -> None:
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

    async def _finish(self, job: Job, outcome: Outcome, recorder: Recorder) -> Generated:
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
                self._gen.announce(EventKind.FINISHED, job.generation)
                raise NotFound(recorder.chat.label)
            if generation.status == GenerationStatus.RUNNING.value:
                message.final_prompt = message.final_prompt or final_prompt
                await repo.save(message)
                close_record(generation, status_of(generation), self._gen.clock(), outcome)
                await repo.save(generation)
                await repo.commit()
                log_finished(generation, outcome)
            # Ended here, or meanwhile (swept): either way it is final now.
            self._gen.announce(EventKind.FINISHED, generation)
        return Generated(message, generation, recorder.images, nothing_made(generation))

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
        self._gen.announce(kind, generation)
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
                    self._gen.announce(EventKind.FINISHED, generation or job.generation)
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
        self._gen.announce(EventKind.FINISHED, generation)
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

    # -- asking about images ---------------------------------------------------------------

    async def analyze(self, image_ids: Sequence[int], question: str) -> Analysis:
        """Answer a question about the owner's images with the vision model."""
        return await analyze(self._uow, self._gen, image_ids, question)

    async def status(self) -> ProviderStatus:
        """Whether generation is configured, and the state of the models in use."""
        return await provider_status(self._gen)


def _failed(
    indexes: Sequence[int], code: ErrorCode, message: str | None = None
) -> list[ImageFailure]:
    text = message or ("cancelled" if code is ErrorCode.CANCELLED else code.value.lower())
    return [ImageFailure(index, code, text) for index in indexes]
