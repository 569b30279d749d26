"""Generation as the API asks for it: prepare a request, run it, record it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from storyframe.db.tables import Frame, Generation, MainChat, Message
from storyframe.domain.errors import DomainError, ErrorCode, NotFound
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
    log_finished,
    record,
    status_of,
    summary,
)
from storyframe.services.generation.pipeline import ImageMaker
from storyframe.services.generation.types import (
    INTERRUPTED,
    MAX_IMAGES,
    Analysis,
    Generated,
    GenerationRequest,
    GenerationStatus,
    ProviderStatus,
)
from storyframe.services.generation.vision import analyze, provider_status
from storyframe.services.image_places import add_images
from storyframe.services.prompts import assemble_prompt, includes_context

log = logging.getLogger("storyframe.generation")


class GenerationService:
    def __init__(self, uow: UnitOfWork, generator: Generator) -> None:
        self._uow = uow
        self._gen = generator
        self._images = ImageMaker(generator)

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
        outcome = Outcome(started=time.monotonic())
        try:
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
                outcome.requested = generation.requested_count
                message = await repo.get(Message, generation.message_id)
                assert message is not None
                assert message.id is not None
                outcome.chat = chat_of(message)
                context_text, caption = await self._chat_facts(repo, message, outcome.chat)
                attachments = await repo.attachments_of(message.id)
                await repo.commit()
            return await self._work(
                Job(generation, message, context_text, caption, attachments), outcome
            )
        except asyncio.CancelledError:
            await self._cut_short(generation_id, outcome)
            raise
        except DomainError:
            raise
        except Exception:
            await self._abandon(generation_id, outcome, GenerationStatus.FAILED)
            raise

    async def _cut_short(self, generation_id: int, outcome: Outcome) -> None:
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

    async def _work(self, job: Job, outcome: Outcome) -> Generated:
        """Make the images within the generation's deadline; what is not made by then is
        reported as timed out, and what was made is kept."""
        generation = job.generation
        try:
            async with asyncio.timeout(self._gen.budget_seconds):
                await self._images.make(job, outcome)
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

    async def _finish(
        self,
        generation_id: int,
        final_prompt: str,
        outcome: Outcome,
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
                record(
                    generation,
                    outcome,
                    len(stored),
                    status_of(generation, len(stored)),
                    self._gen.clock(),
                )
                await repo.save(generation)
                await repo.commit()
        except BaseException:
            await self._gen.media.files.release({item.storage_key for item in stored})
            if not isinstance(generation, Generation):
                self._log_gone(generation_id, outcome)
            raise
        error = None
        if not images:
            code, text = summary(outcome)
            field = ["prompt"] if code is ErrorCode.CONTENT_REFUSED else None
            error = DomainError(code, text, field)
        log_finished(generation, outcome)
        return Generated(message=message, generation=generation, images=images, error=error)

    async def _abandon(
        self, generation_id: int, outcome: Outcome, status: GenerationStatus
    ) -> None:
        """Record a generation cut short (cancelled, or failed unexpectedly) with what it had
        spent; its stored files go, as no image row holds them."""
        keys = {item.storage_key for _, item in outcome.stored}
        try:
            async with self._uow() as repo:
                generation = await repo.get(Generation, generation_id)
                if generation is not None and generation.status in UNFINISHED:
                    record(generation, outcome, 0, status, self._gen.clock())
                    await repo.save(generation)
                    message = await repo.get(Message, generation.message_id)
                    if message is not None and outcome.final_prompt is not None:
                        message.final_prompt = outcome.final_prompt  # what was sent, if anything
                        await repo.save(message)
                    await repo.commit()
                    log_finished(generation, outcome)
        except Exception:
            log.exception("a generation cut short could not be recorded")
        finally:
            await self._gen.media.files.release(keys)

    def _log_gone(self, generation_id: int, outcome: Outcome) -> None:
        log.info(
            "generation finished",
            extra={"generation_id": generation_id, "status": "GONE", **outcome.log_fields()},
        )

    async def analyze(self, image_ids: Sequence[int], question: str) -> Analysis:
        """Answer a question about the owner's images with the vision model."""
        return await analyze(self._uow, self._gen, image_ids, question)

    async def status(self) -> ProviderStatus:
        """Whether generation is configured, and the state of the models in use."""
        return await provider_status(self._gen)
