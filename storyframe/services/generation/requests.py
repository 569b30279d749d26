"""Accepting a generation request: checking it, choosing its model, size and quality, and
saving its message and QUEUED generation, or answering a retry with an idempotency key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from storyframe.db.tables import Generation, Message
from storyframe.domain.errors import DomainError, ErrorCode, NotFound
from storyframe.domain.model_catalogue import ImageModelSpec, image_model
from storyframe.domain.places import PlaceKind
from storyframe.domain.ports import Repository, UnitOfWork
from storyframe.services.chats import check_message, record_message
from storyframe.services.generation.generator import Generator
from storyframe.services.generation.types import MAX_IMAGES, GenerationRequest, GenerationStatus

IDEMPOTENCY_KEY_MAX = 255


@dataclass(frozen=True, slots=True)
class Submitted:
    """An accepted request: its message and generation, and whether they are those of an
    earlier request with the same idempotency key."""

    message: Message
    generation: Generation
    replayed: bool = False


class Requests:
    def __init__(self, uow: UnitOfWork, generator: Generator) -> None:
        self._uow = uow
        self._gen = generator

    async def record(self, request: GenerationRequest, key: str | None) -> Submitted:
        """Check the request, then save its message and a QUEUED generation (or, for a live
        idempotency key with the same request, give back the first ones)."""
        prompt, attached = check_message(request.prompt, request.reference_ids)
        if not 1 <= request.image_count <= MAX_IMAGES:
            raise DomainError(
                ErrorCode.INVALID, f"imageCount must be 1 to {MAX_IMAGES}", ["imageCount"]
            )
        check_idempotency_key(key)
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
            await repo.queue_generation(generation)
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


def check_idempotency_key(key: str | None) -> None:
    """An idempotency key is 1 to 255 characters, not blank (a generation's or an export's)."""
    if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX and key.strip()):
        raise DomainError(
            ErrorCode.INVALID,
            f"idempotencyKey must be 1 to {IDEMPOTENCY_KEY_MAX} characters, not blank",
            ["idempotencyKey"],
        )
