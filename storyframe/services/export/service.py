"""Exports as the API asks for them: accept one (checked, idempotent, queued as a job), cancel
one, delete one with its file. Running them is `ExportRun`'s."""

from __future__ import annotations

from storyframe.db.tables import Export, Video
from storyframe.domain.errors import DomainError, ErrorCode, LimitReached, NotFound
from storyframe.domain.exports import (
    UNFINISHED_EXPORTS,
    ExportFormat,
    ExportStatus,
    FrameSource,
)
from storyframe.domain.jobs import ExportEventKind, Ticket
from storyframe.domain.ports import Repository, UnitOfWork
from storyframe.services.export.requests import Exporter, ExportRequest
from storyframe.services.export.running import ExportRun
from storyframe.services.generation.requests import check_idempotency_key

STEPS = {ExportFormat.MP4: 2, ExportFormat.PDF: 2, ExportFormat.ZIP: 3}
"""Steps per frame an export's progress counts: each image fetched, then rendered (a ZIP renders
the PDF storyboard, then the archive)."""
MISSING_LISTED = 10
"""How many frames without a selected image an error names (then "and N more")."""


class ExportService:
    def __init__(self, uow: UnitOfWork, exporter: Exporter) -> None:
        self._uow = uow
        self._exporter = exporter

    @property
    def exporter(self) -> Exporter:
        return self._exporter

    async def request(self, request: ExportRequest, idempotency_key: str | None = None) -> Export:
        """Check the request and queue the export. The same idempotency key with the same
        request gives back the first request's export and queues nothing; with another request
        it is refused."""
        options = request.options.checked()
        check_idempotency_key(idempotency_key)
        digest = request.digest()
        async with self._uow() as repo:
            if idempotency_key is not None:
                earlier = await self._replay(repo, idempotency_key, digest)
                if earlier is not None:
                    return earlier
            if await repo.get(Video, request.video_id) is None:
                raise NotFound("video", ["videoId"])
            frames = await repo.exports.frames(request.video_id)
            exported = _exported(frames, request.skip_missing)
            most = self._exporter.unfinished_per_user
            if await repo.exports.unfinished() >= most:
                raise LimitReached(
                    f"at most {most} exports may be queued or running at once; wait for one "
                    "to finish or cancel one",
                    ["videoId"],
                )
            export = Export(
                video_id=request.video_id,
                owner_id=repo.owner_id,
                format=request.format.value,
                options={**options.as_record(), "skip_missing": request.skip_missing},
                frame_ids=[frame.frame_id for frame in exported],
                status=ExportStatus.QUEUED.value,
                progress_total=len(exported) * STEPS[request.format],
                idempotency_key=idempotency_key,
                request_hash=digest,
                created_at=self._exporter.clock(),
            )
            await repo.exports.queue(export)
            await repo.commit()
        assert export.id is not None
        if self._exporter.jobs is not None:
            self._exporter.jobs.enqueue(Ticket(export.id, export.owner_id))
        self._exporter.announce(ExportEventKind.QUEUED, export)
        return export

    async def _replay(self, repo: Repository, key: str, digest: str) -> Export | None:
        earlier = await repo.exports.for_key(key)
        if earlier is None:
            return None
        if earlier.created_at <= self._exporter.clock() - self._exporter.idempotency_ttl:
            earlier.idempotency_key = None  # expired: given up, to be used again
            await repo.save(earlier)
            return None
        if earlier.request_hash != digest:
            raise DomainError(
                ErrorCode.IDEMPOTENCY_CONFLICT,
                "this idempotency key was used with another request",
                ["idempotencyKey"],
            )
        return earlier

    async def cancel(self, export_id: int) -> Export:
        """Stop a queued or running export: a queued one ends CANCELLED at once, a running one
        soon (its work files are removed, nothing is stored). One that has ended is refused."""
        async with self._uow() as repo:
            export = await repo.exports.locked(export_id)
            if export is None:
                raise NotFound("export", ["id"])
            if export.status not in UNFINISHED_EXPORTS:
                raise DomainError(
                    ErrorCode.INVALID, f"the export has ended ({export.status.lower()})", ["id"]
                )
            queued = _cancel(export, self._exporter)
            await repo.save(export)
            await repo.commit()
        self._stop(export, queued)
        return export

    async def delete(self, export_id: int) -> Export:
        """Delete an export and its file; one still running is cancelled first."""
        async with self._uow() as repo:
            export = await repo.exports.locked(export_id)
            if export is None:
                raise NotFound("export", ["id"])
            running = export.status in UNFINISHED_EXPORTS
            queued = _cancel(export, self._exporter) if running else False
            keys = [key for key in (export.storage_key, export.subtitles_key) if key]
            await repo.delete_row(export)
            await repo.commit()
        if running:
            self._stop(export, queued)
        await self._exporter.files.release(keys)
        return export

    def _stop(self, export: Export, queued: bool) -> None:
        assert export.id is not None
        if self._exporter.jobs is not None:
            self._exporter.jobs.cancel(export.id)
        # whoever runs it, in whichever process, hears it at once (and so do subscribers)
        self._exporter.announce(
            ExportEventKind.FINISHED if queued else ExportEventKind.CANCEL_REQUESTED, export
        )

    async def run_job(self, export_id: int) -> None:
        """Run an export the job queue handed over."""
        await ExportRun(self._uow, self._exporter, export_id).run_job()


def _cancel(export: Export, exporter: Exporter) -> bool:
    """Mark the export cancelled (at once when it is only queued); whether it was queued."""
    export.cancel_requested = True
    if export.status != ExportStatus.QUEUED.value:
        return False
    export.status = ExportStatus.CANCELLED.value
    export.error_code = ErrorCode.CANCELLED.value
    export.error_message = "cancelled"
    export.finished_at = exporter.clock()
    return True


def _exported(frames: list[FrameSource], skip_missing: bool) -> list[FrameSource]:
    """The frames an export takes: every frame, each with a selected image, unless told to
    leave out those without one."""
    if not frames:
        raise DomainError(ErrorCode.EMPTY_VIDEO, "the video has no frames to export", ["videoId"])
    missing = [frame for frame in frames if frame.image_id is None]
    if not missing:
        return frames
    if skip_missing and len(missing) < len(frames):
        return [frame for frame in frames if frame.image_id is not None]
    named = ", ".join(
        f"{frame.order + 1}" + (f" ({frame.title})" if frame.title else "")
        for frame in missing[:MISSING_LISTED]
    )
    more = f" and {len(missing) - MISSING_LISTED} more" if len(missing) > MISSING_LISTED else ""
    hint = "" if skip_missing else "; select an image in each, or ask with skipMissing: true"
    raise DomainError(
        ErrorCode.MISSING_SELECTION,
        f"frames without a selected image: {named}{more}{hint}",
        ["videoId"],
    )
