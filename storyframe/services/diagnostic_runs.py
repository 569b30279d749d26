"""Diagnostics as the API asks for them: a run of one suite's checks for the viewer, queued as a
job, each check's result written to the run's row (and told to its subscribers) as soon as it is
known.

A user has one run at a time, and a few an hour. Checks that cost money run only when the cost
was confirmed; otherwise they are SKIPPED with what they would cost. A run stopped by a shutdown
goes back to the queue and starts again from its first check in the next process.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PIL import Image

from storyframe.db.tables import DiagnosticRun, utcnow
from storyframe.domain.errors import DomainError, ErrorCode, LimitReached
from storyframe.domain.jobs import DiagnosticsEvent, DiagnosticsEventKind, Events, JobQueue, Ticket
from storyframe.domain.ports import UnitOfWork
from storyframe.domain.ratelimit import RateLimit

if TYPE_CHECKING:  # the checks use the services this module is part of: imported when run
    from storyframe.services.diagnostics import CheckImage, CheckResult, DiagnosticsEnv, Suite

log = logging.getLogger("storyframe.diagnostics")

UNFINISHED_RUNS = ("QUEUED", "RUNNING")
PREVIEW_SIDE = 384
"""The longest side of a check's image as a run keeps it (a JPEG data URL)."""
MAX_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class Diagnostician:
    """What diagnostics share across a process: where runs wait, their events, the rate limit,
    and what the configuration check reports."""

    jobs: JobQueue | None
    events: Events | None
    limit: RateLimit
    storage_backend: str
    database_dialect: str
    secrets: tuple[str, ...] = ()
    clock: Callable[[], datetime] = utcnow

    def announce(
        self, kind: DiagnosticsEventKind, run: DiagnosticRun, index: int | None = None
    ) -> None:
        if self.events is not None and run.id is not None:
            self.events.publish(DiagnosticsEvent(kind, run.id, run.owner_id, index))


class DiagnosticRuns:
    def __init__(self, uow: UnitOfWork, diagnostician: Diagnostician) -> None:
        self._uow = uow
        self._doc = diagnostician

    async def start(self, suite: Suite, env: DiagnosticsEnv, confirm_cost: bool) -> DiagnosticRun:
        """Queue a run of the suite for the user; their only one, within the rate limit."""
        from storyframe.services.diagnostics import Suite, estimated_cost, plan

        placeholder = env.provider.placeholder
        cost = estimated_cost(
            suite,
            placeholder,
            env.image_model,
            env.vision_model,
            partial_images=env.partial_images if suite is Suite.API else 0,
        )
        async with self._uow() as repo:
            owner = repo.owner_id
            if await repo.runs.unfinished() > 0:
                raise LimitReached(
                    "a diagnostics run of yours is under way; wait for it to finish", ["suite"]
                )
            if not await self._doc.limit.allow(f"user:{owner}"):
                raise DomainError(
                    ErrorCode.RATE_LIMITED, "too many diagnostics runs; try again later", ["suite"]
                )
            run = DiagnosticRun(
                owner_id=owner,
                suite=suite.value,
                status="QUEUED",
                allow_paid=confirm_cost or placeholder,
                placeholder=placeholder,
                estimated_cost_usd=round(cost, 4),
                checks=[
                    {"name": name, "title": title, "status": "PENDING"}
                    for name, title in plan(suite)
                ],
                created_at=self._doc.clock(),
            )
            await repo.add(run)
            await repo.commit()
        assert run.id is not None
        if self._doc.jobs is not None:
            self._doc.jobs.enqueue(Ticket(run.id, owner))
        self._doc.announce(DiagnosticsEventKind.QUEUED, run)
        return run

    async def run_job(self, run_id: int, env: DiagnosticsEnv) -> None:
        """Run the checks of a queued run, writing each result as it comes."""
        from storyframe.services.diagnostics import Suite, plan, run_suite

        async with self._uow() as repo:
            if not await repo.runs.start(run_id, self._doc.clock()):
                return
            run = await repo.get(DiagnosticRun, run_id)
            assert run is not None
            await repo.commit()
        self._doc.announce(DiagnosticsEventKind.STARTED, run)
        suite = Suite(run.suite)
        env = _with(env, run.allow_paid, self._doc)
        names = [name for name, _ in plan(suite)]
        try:
            if run.attempts > MAX_ATTEMPTS:
                raise DomainError(ErrorCode.INTERRUPTED, "the run was interrupted too often")

            async def recorded(result: CheckResult) -> None:
                index = names.index(result.name) if result.name in names else len(names)
                await self._record(run_id, index, _check_json(result))

            await run_suite(suite, env, on_check=recorded)
        except asyncio.CancelledError:
            await asyncio.shield(self._requeue(run_id))
            raise
        except Exception as error:
            log.exception("a diagnostics run failed", extra={"run_id": run_id})
            await asyncio.shield(self._fail(run_id, error))
            return
        await self._finish(run_id)

    async def _record(self, run_id: int, index: int, check: dict[str, Any]) -> None:
        async with self._uow() as repo:
            run = await repo.get(DiagnosticRun, run_id)
            if run is None:
                return
            checks = list(run.checks)
            if index < len(checks):
                checks[index] = check
            else:
                checks.append(check)
            run.checks = checks
            run.heartbeat_at = self._doc.clock()
            await repo.save(run)
            await repo.commit()
        self._doc.announce(DiagnosticsEventKind.CHECK_FINISHED, run, index)

    async def _finish(self, run_id: int) -> None:
        async with self._uow() as repo:
            run = await repo.get(DiagnosticRun, run_id)
            if run is None:
                return
            failed = any(check.get("status") == "FAILED" for check in run.checks)
            run.status = "FAILED" if failed else "PASSED"
            run.finished_at = self._doc.clock()
            await repo.save(run)
            await repo.commit()
        self._doc.announce(DiagnosticsEventKind.FINISHED, run)

    async def _fail(self, run_id: int, error: Exception) -> None:
        code = error.code.value if isinstance(error, DomainError) else "INTERNAL_ERROR"
        message = error.message if isinstance(error, DomainError) else "the run failed"
        try:
            async with self._uow() as repo:
                run = await repo.get(DiagnosticRun, run_id)
                if run is None:
                    return
                run.checks = [
                    check
                    if check.get("status") != "PENDING"
                    else {**check, "status": "FAILED", "errorCode": code, "error": message}
                    for check in run.checks
                ]
                run.status = "FAILED"
                run.finished_at = self._doc.clock()
                await repo.save(run)
                await repo.commit()
        except Exception:
            log.exception("a failed diagnostics run could not be recorded")
            return
        self._doc.announce(DiagnosticsEventKind.FINISHED, run)

    async def _requeue(self, run_id: int) -> None:
        """Stopped by a shutdown: back to the queue, to start again from its first check."""
        try:
            async with self._uow() as repo:
                run = await repo.get(DiagnosticRun, run_id)
                if run is None or run.status != "RUNNING":
                    return
                run.status = "QUEUED"
                run.attempts = max(0, run.attempts - 1)  # handed back, not lost
                run.heartbeat_at = None
                run.checks = [
                    {"name": c.get("name"), "title": c.get("title"), "status": "PENDING"}
                    for c in run.checks
                ]
                await repo.save(run)
                await repo.commit()
        except Exception:
            log.exception("a stopped diagnostics run could not be put back")


def _with(env: DiagnosticsEnv, allow_paid: bool, doc: Diagnostician) -> DiagnosticsEnv:
    return replace(
        env,
        allow_paid=allow_paid,
        paid_hint="run again with confirmCost: true",
        storage_backend=doc.storage_backend,
        database_dialect=doc.database_dialect,
        secrets=doc.secrets,
    )


def _check_json(result: CheckResult) -> dict[str, Any]:
    """A check's result as the run keeps it: its images as small JPEG data URLs."""
    return {
        "name": result.name,
        "title": result.title,
        "status": result.status.value,
        "durationMs": result.duration_ms,
        "detail": result.detail,
        "warning": result.warning,
        "skippedReason": result.skipped_reason,
        "request": result.request,
        "response": result.response,
        "inputImages": [_image_json(image) for image in result.input_images],
        "outputImages": [_image_json(image) for image in result.output_images],
        "errorCode": result.error_code,
        "error": result.error,
        "estimatedCostUsd": result.estimated_cost_usd,
    }


def _image_json(image: CheckImage) -> dict[str, Any]:
    with Image.open(io.BytesIO(image.data)) as opened:
        picture = opened.convert("RGB")
        picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
        out = io.BytesIO()
        picture.save(out, format="JPEG", quality=80)
    encoded = base64.b64encode(out.getvalue()).decode()
    return {
        "url": f"data:image/jpeg;base64,{encoded}",
        "contentType": image.content_type,
        "width": image.width,
        "height": image.height,
    }
