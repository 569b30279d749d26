"""The vision model asked about images, and the provider's own status."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from storyframe.db.tables import Image
from storyframe.domain.errors import DomainError, ErrorCode, NotFound
from storyframe.domain.image_provider import (
    ProviderError,
    Reference,
    RemoteModel,
)
from storyframe.domain.model_catalogue import (
    image_model,
    vision_cost,
)
from storyframe.domain.ports import (
    UnitOfWork,
)
from storyframe.services.generation.generator import Generator
from storyframe.services.generation.types import (
    MAX_ANALYZED,
    QUESTION_MAX,
    Analysis,
    ModelState,
    ProviderStatus,
    provider_error,
)

log = logging.getLogger("storyframe.generation")


async def analyze(
    uow: UnitOfWork, generator: Generator, image_ids: Sequence[int], question: str
) -> Analysis:
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
        raise DomainError(ErrorCode.INVALID, f"at most {MAX_ANALYZED} images at once", ["imageIds"])
    async with uow() as repo:
        images = [await repo.get(Image, image_id) for image_id in ids]
    if any(image is None for image in images):
        raise NotFound("image", ["imageIds"])
    references: list[Reference] = []
    for image in images:
        assert image is not None
        try:
            data, content_type = await generator.read_for_model(image)
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
    model = generator.defaults.vision_model
    try:
        described = await generator.provider.analyze(references, question, model)
    except ProviderError as error:
        raise provider_error(error) from None
    return Analysis(
        text=described.text,
        model=described.model,
        placeholder=generator.provider.placeholder,
        usage=described.usage,
        estimated_cost_usd=vision_cost(described.model, described.usage),
    )


async def provider_status(generator: Generator) -> ProviderStatus:
    """Whether generation is configured, and the state of the models in use."""
    defaults, provider = generator.defaults, generator.provider
    if provider.placeholder:
        offline = ModelState(provider.name, True, None)
        return ProviderStatus(False, provider.name, offline, offline, None)
    error: DomainError | None = None
    listed: dict[str, RemoteModel] | None = None
    try:
        listed = {model.id: model for model in await generator.remote_models()}
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
