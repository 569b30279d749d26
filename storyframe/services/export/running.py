"""Running one export: claim its row, fetch the selected images through blob storage, render the
file in a worker thread (reporting how far it got), store it, and record how it ended.

Work files live in one folder per start of an export under the data directory's temporary
folder; what earlier starts left (a run killed in the middle) is removed when the export starts
again, and the folder when it ends, so a file is either stored whole or not at all. A run whose
export another run has started since (its process was thought dead) records nothing. A run
stopped by a shutdown puts the export back in the queue; one stopped by its user ends CANCELLED.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from storyframe.db.tables import Export, Project, Video
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.exports import ExportFormat, ExportStatus, FrameSource
from storyframe.domain.jobs import ExportEventKind
from storyframe.domain.ports import Blob, Repository, UnitOfWork
from storyframe.services.export.archive import render_archive
from storyframe.services.export.fetching import fetch_frames
from storyframe.services.export.requests import Exporter, ExportOptions
from storyframe.services.export.sheets import (
    Captions,
    Progress,
    RenderFailed,
    Sheet,
    VideoOptions,
)
from storyframe.services.export.storyboard import render_storyboard
from storyframe.services.export.video import render_video

log = logging.getLogger("storyframe.export")

T = TypeVar("T")

MAX_ATTEMPTS = 3
"""How many times an export is started: one whose processes kept dying fails after that."""
EXTENSIONS = {ExportFormat.MP4: "mp4", ExportFormat.PDF: "pdf", ExportFormat.ZIP: "zip"}
CONTENT_TYPES = {
    ExportFormat.MP4: "video/mp4",
    ExportFormat.PDF: "application/pdf",
    ExportFormat.ZIP: "application/zip",
}


class _Stopped(Exception):
    """Raised inside the rendering thread when the export is stopped."""


@dataclass(slots=True)
class _Made:
    file: Path
    duration_ms: int | None = None
    subtitles: str | None = None


class ExportRun:
    def __init__(self, uow: UnitOfWork, exporter: Exporter, export_id: int) -> None:
        self._uow = uow
        self._exporter = exporter
        self._id = export_id
        self._stop = threading.Event()
        self._done = 0
        """Steps done so far (images fetched, frames rendered): written by the rendering
        thread, read by the reporter."""
        self._root = exporter.temporaries.root
        self._folder = self._root / f"export-{export_id}"
        self._stored: list[Blob] = []
        self._attempt = 0
        """Which start of the export this run is: a record is refused once another has begun."""
        """What this run has put in blob storage so far: released unless it is recorded."""

    async def run_job(self) -> None:
        try:
            await self.run()
        except DomainError as refused:
            log.info("export not run", extra={"export_id": self._id, "reason": refused.message})

    async def run(self) -> None:
        try:
            export, sheet_sources, names = await self._claim()
        except asyncio.CancelledError:  # stopped once claimed, maybe: recorded as stopped
            await asyncio.shield(self._clear_then(self._record_stopped(self._stored)))
            raise
        reporter = asyncio.create_task(self._report(export))
        # The work files go before the end is recorded: whoever sees it ended sees them gone.
        try:
            try:
                made = await self._make(export, sheet_sources, names)
                await self._store(export, made)
            finally:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
        except asyncio.CancelledError:
            self._stop.set()
            await asyncio.shield(self._clear_then(self._record_stopped(self._stored)))
            raise
        except Exception as error:
            recording = self._record_failed(export, error, self._stored)
            await asyncio.shield(self._clear_then(recording))
            if not isinstance(error, RenderFailed | DomainError):
                log.exception("an export failed", extra={"export_id": self._id})
        else:
            await asyncio.shield(self._clear_then(self._record_done(made, self._stored)))

    async def _mine(self, repo: Repository) -> Export | None:
        """The export's row, locked, if this run still holds it: None once it is gone, or once
        another run has started it (its process was thought dead, and this one ran on)."""
        row = await repo.exports.locked(self._id)
        return row if row is not None and row.attempts == self._attempt else None

    async def _clear_then(self, recording: Coroutine[Any, Any, None]) -> None:
        try:
            await asyncio.to_thread(shutil.rmtree, self._folder, True)
        finally:
            await recording

    # -- claiming ------------------------------------------------------------------------------

    async def _claim(self) -> tuple[Export, list[FrameSource], tuple[str, str]]:
        now = self._exporter.clock()
        async with self._uow() as repo:
            if not await repo.exports.start(self._id, now):
                found = await repo.get(Export, self._id)
                state = found.status.lower() if found is not None else "gone"
                raise DomainError(ErrorCode.INVALID, f"the export is {state} already")
            export = await repo.get(Export, self._id)
            assert export is not None
            self._attempt = export.attempts
            self._folder = self._root / f"export-{self._id}-{self._attempt}"
            video = await repo.get(Video, export.video_id)
            project = await repo.get(Project, video.project_id) if video is not None else None
            sources = await repo.exports.frames_by_id(export.frame_ids)
            await repo.commit()
        names = (project.name if project else "", video.name if video else "")
        if export.attempts > MAX_ATTEMPTS:
            # The processes that ran it before stopped in the middle, again and again.
            await self._record_failed(
                export, DomainError(ErrorCode.INTERRUPTED, "the export was interrupted"), []
            )
            raise DomainError(ErrorCode.INTERRUPTED, "the export was interrupted too often")
        await asyncio.to_thread(_fresh_folder, self._root, self._id, self._folder)
        self._exporter.announce(ExportEventKind.STARTED, export)
        return export, sources, names

    # -- making the file -----------------------------------------------------------------------

    async def _make(
        self, export: Export, sources: list[FrameSource], names: tuple[str, str]
    ) -> _Made:
        options = ExportOptions.of_record(export.options)
        format_ = ExportFormat(export.format)

        def fetched() -> None:
            self._done += 1

        frames = await fetch_frames(self._exporter.storage, sources, options, self._folder, fetched)
        sheet = Sheet(
            project_name=names[0],
            video_title=names[1],
            made_at=self._exporter.clock(),
            frames=frames,
        )
        target = self._folder / f"export.{EXTENSIONS[format_]}"
        base = len(frames)
        if format_ is ExportFormat.MP4:
            video_options = VideoOptions(
                resolution=options.resolution,
                fps=options.fps,
                transition=options.transition,
                transition_ms=options.transition_ms,
                captions=options.captions,
                fit=options.fit,
            )
            facts = await self._render(
                lambda progress: render_video(sheet, video_options, target, progress), base
            )
            subtitles = facts.subtitles if options.captions is Captions.SUBTITLES else None
            return _Made(target, duration_ms=facts.duration_ms, subtitles=subtitles)
        if format_ is ExportFormat.PDF:
            await self._render(
                lambda progress: render_storyboard(sheet, options.layout, target, progress), base
            )
            return _Made(target)
        storyboard = self._folder / "storyboard.pdf"
        await self._render(
            lambda progress: render_storyboard(sheet, options.layout, storyboard, progress), base
        )
        await self._render(
            lambda progress: render_archive(sheet, storyboard, target, progress), 2 * base
        )
        return _Made(target)

    async def _render(self, render: Callable[[Progress], T], base: int) -> T:
        """Run a renderer in a worker thread; its progress counts from `base`. Stopped, the
        thread is told at its next frame and waited for."""

        def progress(done: int, _total: int) -> None:
            if self._stop.is_set():
                raise _Stopped
            self._done = base + done

        worker = asyncio.create_task(asyncio.to_thread(render, progress))
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            self._stop.set()
            with contextlib.suppress(BaseException):
                await worker
            raise

    async def _store(self, export: Export, made: _Made) -> None:
        """The file (and its subtitles) in blob storage, under keys made from their bytes; an
        upload under way when the run is stopped is let finish, so that its file is known (and
        released)."""
        format_ = ExportFormat(export.format)
        checksum = await asyncio.to_thread(_sha256, made.file)
        await self._put(made.file, checksum, EXTENSIONS[format_])
        if made.subtitles is not None:
            vtt = self._folder / "subtitles.vtt"
            await asyncio.to_thread(vtt.write_text, made.subtitles, "utf-8")
            await self._put(vtt, await asyncio.to_thread(_sha256, vtt), "vtt")

    async def _put(self, file: Path, checksum: str, extension: str) -> None:
        async def put() -> None:
            blob = await self._exporter.storage.put_file(
                file, checksum=checksum, extension=extension
            )
            self._stored.append(blob)

        uploading = asyncio.ensure_future(put())
        try:
            await asyncio.shield(uploading)
        except asyncio.CancelledError:
            await asyncio.wait([uploading])
            raise

    # -- reporting and recording ---------------------------------------------------------------

    async def _report(self, export: Export) -> None:
        """Every little while, write how far the export is and tell its subscribers."""
        written = -1
        while True:
            await asyncio.sleep(self._exporter.progress_seconds)
            done = self._done
            if done == written:
                continue
            async with self._uow() as repo:
                row = await self._mine(repo)
                if row is None or row.status != ExportStatus.RUNNING.value:
                    return
                row.progress_done = min(done, row.progress_total)
                await repo.save(row)
                await repo.commit()
            written = done
            self._exporter.announce(ExportEventKind.PROGRESS, export)

    async def _record_done(self, made: _Made, stored: list[Blob]) -> None:
        async with self._uow() as repo:
            row = await self._mine(repo)
            if row is not None and row.cancel_requested:
                # Cancelled while its file was being stored: it ends cancelled, and the file goes.
                await repo.commit()
                await self._record_stopped(stored)
                return
            if row is None or row.status != ExportStatus.RUNNING.value:
                # Deleted (or ended elsewhere) meanwhile: its file is nobody's.
                await self._exporter.files.release([blob.key for blob in stored])
                if row is not None:
                    self._exporter.announce(ExportEventKind.FINISHED, row)
                return
            main = stored[0]
            row.status = ExportStatus.SUCCEEDED.value
            row.storage_key, row.url, row.byte_size = main.key, main.url, main.byte_size
            row.content_type = CONTENT_TYPES[ExportFormat(row.format)]
            if len(stored) > 1:
                row.subtitles_key, row.subtitles_url = stored[1].key, stored[1].url
            row.duration_ms = made.duration_ms
            row.progress_done = row.progress_total
            row.finished_at = self._exporter.clock()
            await repo.save(row)
            await repo.commit()
        log.info(
            "export finished",
            extra={"export_id": self._id, "format": row.format, "bytes": main.byte_size},
        )
        self._exporter.announce(ExportEventKind.FINISHED, row)

    async def _record_stopped(self, stored: list[Blob]) -> None:
        """Cancelled by its user: it ends CANCELLED. Stopped by a shutdown: back to the queue,
        to start again in the next process."""
        try:
            async with self._uow() as repo:
                row = await self._mine(repo)
                if row is None or row.status != ExportStatus.RUNNING.value:
                    await self._exporter.files.release([blob.key for blob in stored])
                    return
                if row.cancel_requested:
                    row.status = ExportStatus.CANCELLED.value
                    row.error_code, row.error_message = ErrorCode.CANCELLED.value, "cancelled"
                    row.finished_at = self._exporter.clock()
                    kind = ExportEventKind.FINISHED
                else:
                    row.status = ExportStatus.QUEUED.value
                    row.attempts = max(0, row.attempts - 1)
                    row.heartbeat_at = None
                    row.progress_done = 0
                    kind = ExportEventKind.QUEUED
                await repo.save(row)
                await repo.commit()
            await self._exporter.files.release([blob.key for blob in stored])
        except Exception:
            log.exception("a stopped export could not be recorded", extra={"export_id": self._id})
            return
        self._exporter.announce(kind, row)

    async def _record_failed(self, export: Export, error: Exception, stored: list[Blob]) -> None:
        if isinstance(error, DomainError):
            code, message = error.code, error.message
        elif isinstance(error, RenderFailed):
            code, message = ErrorCode.EXPORT_FAILED, error.message
        else:
            code, message = ErrorCode.EXPORT_FAILED, "the export failed"
        try:
            async with self._uow() as repo:
                row = await self._mine(repo)
                if row is None or row.status != ExportStatus.RUNNING.value:
                    return
                row.status = ExportStatus.FAILED.value
                row.error_code, row.error_message = code.value, message[:1000]
                row.finished_at = self._exporter.clock()
                await repo.save(row)
                await repo.commit()
            await self._exporter.files.release([blob.key for blob in stored])
        except Exception:
            log.exception("a failed export could not be recorded", extra={"export_id": self._id})
            return
        self._exporter.announce(ExportEventKind.FINISHED, row)


def _fresh_folder(root: Path, export_id: int, folder: Path) -> None:
    """An empty work folder for this start of the export; what earlier starts left (a killed
    process's files) goes."""
    for left in root.glob(f"export-{export_id}-*"):
        shutil.rmtree(left, ignore_errors=True)
    folder.mkdir(parents=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
