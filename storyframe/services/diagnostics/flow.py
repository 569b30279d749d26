"""The API suite's scratch project, and its full flow: a video, a frame, an image made in it
and selected, the video exported as a PDF storyboard, and the scratch project deleted, whatever
happened on the way."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from storyframe.db.tables import Export
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.exports import UNFINISHED_EXPORTS, ExportFormat, ExportStatus
from storyframe.domain.image_provider import ProviderError
from storyframe.domain.jobs import ExportEventKind, JobEvent, is_export
from storyframe.domain.model_catalogue import image_model
from storyframe.domain.places import Place, PlaceKind
from storyframe.services.deletion import Deleted
from storyframe.services.diagnostics.costs import cheapest
from storyframe.services.diagnostics.env import DiagnosticsEnv
from storyframe.services.diagnostics.generating import generate
from storyframe.services.diagnostics.results import INTERNAL_ERROR, CheckResult
from storyframe.services.diagnostics.waiting import until_final, woken_by
from storyframe.services.export.requests import ExportRequest
from storyframe.services.generation import GenerationRequest

if TYPE_CHECKING:
    from storyframe.services.container import Services

log = logging.getLogger("storyframe.diagnostics")

T = TypeVar("T")

PROJECT_NAME = "Storyframe diagnostics"
FLOW_PROMPT = "A lighthouse on a cliff at dusk, simple shapes, flat colours."


class Scratch:
    """The project the API suite works in, made when a check first needs it."""

    def __init__(self, env: DiagnosticsEnv, services: Services) -> None:
        self.env = env
        self.services = services
        self.project_id: int | None = None
        self._chat: Place | None = None
        self.deleted: Deleted | None = None

    async def project(self) -> int:
        if self.project_id is None:
            name = f"{PROJECT_NAME} {self.env.clock():%Y-%m-%d %H:%M:%S}"
            project = await self.services.projects.create(name)
            assert project.id is not None
            self.project_id = project.id
        return self.project_id

    async def chat(self) -> Place:
        """The main chat of a video in the scratch project, where the generation checks run."""
        if self._chat is None:
            video = await self.services.videos.create(await self.project(), "Diagnostics")
            assert video.id is not None
            chats = await self.services.reads.main_chats_of_videos([video.id])
            chat_id = chats[video.id][0].id
            assert chat_id is not None
            self._chat = Place(PlaceKind.MAIN_CHAT, chat_id)
        return self._chat

    async def delete(self) -> Deleted | None:
        """Delete the scratch project with all it holds; None when there is none (any more)."""
        if self.project_id is None or self.deleted is not None:
            return None
        self.deleted = await self.services.projects.delete(self.project_id)
        return self.deleted

    async def delete_quietly(self) -> None:
        """`delete`, a failure logged rather than raised: the suite's last word."""
        try:
            await self.delete()
        except Exception:
            log.exception(
                "the diagnostics' scratch project could not be deleted",
                extra={"project_id": self.project_id},
            )


async def full_flow(env: DiagnosticsEnv, scratch: Scratch, result: CheckResult) -> None:
    """Video, frame, image, selection, PDF export, then the scratch project deleted in any
    case. Each step is listed in the response with how long it took."""
    steps: list[dict[str, Any]] = []
    result.request = {
        "steps": [
            "createVideo",
            "createFrame",
            "generateFrameImages",
            "selectImage",
            "exportVideo",
            "deleteProject",
        ],
        "prompt": FLOW_PROMPT,
        "export": {"format": ExportFormat.PDF.value},
    }
    result.response = {"steps": steps}
    try:
        await _flow(env, scratch, result, steps)
    except (DomainError, ProviderError) as error:
        code = error.code.value if isinstance(error, DomainError) else error.failure.value
        step = steps[-1]["step"] if steps else "start"
        result.fail(code, error.message, f"{step}: {code}: {error.message}")
    finally:
        await _clean_up(scratch, result, steps)


async def _flow(
    env: DiagnosticsEnv, scratch: Scratch, result: CheckResult, steps: list[dict[str, Any]]
) -> None:
    services = scratch.services
    project_id = await _step(steps, "createProject", scratch.project())
    video = await _step(steps, "createVideo", services.videos.create(project_id, "Full flow"))
    assert video.id is not None
    frame = await _step(steps, "createFrame", services.frames.create(video.id, "Opening shot"))
    assert frame.id is not None
    size, quality = cheapest(image_model(env.image_model))
    request = GenerationRequest(
        chat=Place(PlaceKind.FRAME, frame.id),
        prompt=FLOW_PROMPT,
        size=size,
        quality=quality,
    )
    made = CheckResult(result.name, result.title, result.status)
    try:
        generated = await _step(
            steps, "generateFrameImages", generate(env, services, request, made)
        )
    finally:
        result.output_images = made.output_images
        result.estimated_cost_usd = made.estimated_cost_usd
        steps[-1]["generation"] = (made.response or {}).get("generation")
    image_id, image = generated.images[0]
    await _step(steps, "selectImage", services.frames.select_image(frame.id, image_id))
    export = await _step(
        steps, "exportVideo", _export(env, services, ExportRequest(video.id, ExportFormat.PDF))
    )
    steps[-1]["export"] = _export_json(export)
    if export.status != ExportStatus.SUCCEEDED.value:
        raise DomainError(
            _error_code(export.error_code),
            export.error_message or f"the export ended {export.status.lower()}",
        )
    size_kb = (export.byte_size or 0) / 1024
    result.detail = (
        f"video, frame, one {image.width}x{image.height} image selected, "
        f"PDF of {size_kb:.0f} KiB exported"
    )


async def _export(env: DiagnosticsEnv, services: Services, request: ExportRequest) -> Export:
    """Ask for the export, and wait (bounded) for it to end; one still unfinished is cancelled
    and reported as failed."""
    exports = services.exports
    export = await exports.request(request)
    export_id = export.id
    assert export_id is not None

    async def read() -> Export:
        found = (await services.reads.get_many(Export, [export_id])).get(export_id)
        if found is None:
            raise DomainError(ErrorCode.NOT_FOUND, "the export is gone")
        return found

    accepts = partial(_export_finished, export_id)
    async with woken_by(exports.exporter.events, accepts) as woken:
        export = await until_final(
            read,
            lambda row: row.status not in UNFINISHED_EXPORTS,
            woken,
            env.export_wait_seconds,
            env.poll_seconds,
        )
    if export.status in UNFINISHED_EXPORTS:
        await exports.cancel(export_id)
        raise DomainError(
            ErrorCode.EXPORT_FAILED,
            f"the export did not end within {env.export_wait_seconds:g} s; cancelled",
        )
    return export


async def _clean_up(scratch: Scratch, result: CheckResult, steps: list[dict[str, Any]]) -> None:
    started = time.monotonic()
    step: dict[str, Any] = {"step": "deleteProject"}
    try:
        deleted = await scratch.delete()
    except Exception as error:
        log.exception(
            "the diagnostics' scratch project could not be deleted",
            extra={"project_id": scratch.project_id},
        )
        step.update(ok=False, error=str(error) or type(error).__name__)
        if result.error is None:
            code = error.code.value if isinstance(error, DomainError) else INTERNAL_ERROR
            result.fail(code, f"the scratch project could not be deleted: {step['error']}")
    else:
        step["ok"] = True
        if deleted is not None:
            step["deleted"] = {
                "videos": deleted.videos,
                "frames": deleted.frames,
                "messages": deleted.messages,
                "images": deleted.images,
            }
            if result.error is None:
                result.detail += ", scratch project deleted"
    step["durationMs"] = round((time.monotonic() - started) * 1000, 1)
    steps.append(step)


async def _step(steps: list[dict[str, Any]], name: str, work: Awaitable[T]) -> T:
    """`work`, listed as a step of the flow: its name, whether it worked, how long it took."""
    step: dict[str, Any] = {"step": name}
    steps.append(step)
    started = time.monotonic()
    try:
        done = await work
    except BaseException:
        step["ok"] = False
        raise
    finally:
        step["durationMs"] = round((time.monotonic() - started) * 1000, 1)
    step["ok"] = True
    return done


def _export_json(export: Export) -> dict[str, Any]:
    return {
        "id": export.id,
        "format": export.format,
        "status": export.status,
        "contentType": export.content_type,
        "byteSize": export.byte_size,
        "progress": {"done": export.progress_done, "total": export.progress_total},
        "errorCode": export.error_code,
        "errorMessage": export.error_message,
    }


def _error_code(value: str | None) -> ErrorCode:
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.EXPORT_FAILED


def _export_finished(export_id: int, event: JobEvent) -> bool:
    return is_export(event, ExportEventKind.FINISHED) and event.export_id == export_id
