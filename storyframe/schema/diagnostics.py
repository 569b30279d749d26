"""Diagnostics in the API: a run of one suite's checks, each check's result, and the events of
a run under way."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from storyframe.db import tables
from storyframe.domain import jobs
from storyframe.schema.nodes import Node
from storyframe.schema.payloads import Payload
from storyframe.services import diagnostics

DiagnosticsSuite = strawberry.enum(
    diagnostics.Suite,
    name="DiagnosticsSuite",
    description="OPENAI asks the provider itself; API goes the product's way, as the viewer, "
    "in a scratch project deleted at the end.",
)
DiagnosticsEventKind = strawberry.enum(
    jobs.DiagnosticsEventKind,
    name="DiagnosticsEventKind",
    description="STATE (the run as it stands, first), QUEUED, STARTED, CHECK_FINISHED (with "
    "the check) and FINISHED (the last).",
)


@strawberry.enum(description="How a check went; PENDING until it has run.")
class CheckStatus(StrEnum):
    PENDING = "PENDING"
    PASSED = "PASSED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@strawberry.enum(description="Where a run stands: QUEUED and RUNNING are not final.")
class DiagnosticsRunStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PASSED = "PASSED"
    """No check failed."""
    FAILED = "FAILED"
    """At least one check failed."""


@strawberry.type(description="An image a check sent or received, as a small JPEG data URL.")
class DiagnosticImage:
    url: str
    content_type: str = strawberry.field(description="The original's type.")
    width: int = strawberry.field(description="The original's width.")
    height: int


@strawberry.type(description="One check of a diagnostics run.")
class DiagnosticCheck:
    name: str = strawberry.field(description="Stable, e.g. `openai.image`, `api.full_flow`.")
    title: str
    status: CheckStatus
    duration_ms: float | None
    detail: str | None
    warning: str | None = strawberry.field(
        description="Passed, but with something to know (a model shutting down soon)."
    )
    skipped_reason: str | None
    request: JSON | None = strawberry.field(description="What was sent; secrets redacted.")
    response: JSON | None = strawberry.field(description="What came back; secrets redacted.")
    input_images: list[DiagnosticImage]
    output_images: list[DiagnosticImage]
    error_code: str | None
    error: str | None
    estimated_cost_usd: float | None

    @classmethod
    def of(cls, check: dict[str, Any]) -> DiagnosticCheck:
        def images(key: str) -> list[DiagnosticImage]:
            return [
                DiagnosticImage(
                    url=str(image["url"]),
                    content_type=str(image["contentType"]),
                    width=int(image["width"]),
                    height=int(image["height"]),
                )
                for image in check.get(key) or []
            ]

        return cls(
            name=str(check.get("name", "")),
            title=str(check.get("title", "")),
            status=CheckStatus(str(check.get("status", "PENDING"))),
            duration_ms=check.get("durationMs"),
            detail=check.get("detail"),
            warning=check.get("warning"),
            skipped_reason=check.get("skippedReason"),
            request=check.get("request"),
            response=check.get("response"),
            input_images=images("inputImages"),
            output_images=images("outputImages"),
            error_code=check.get("errorCode"),
            error=check.get("error"),
            estimated_cost_usd=check.get("estimatedCostUsd"),
        )


@strawberry.type(
    description="A run of the diagnostics' checks, as a job: QUEUED, RUNNING, then PASSED "
    "(no check failed) or FAILED."
)
class DiagnosticsRun(Node):
    suite: DiagnosticsSuite  # type: ignore[valid-type]
    status: DiagnosticsRunStatus
    placeholder: bool = strawberry.field(
        description="The checks ran against the placeholder provider: no OpenAI key is set."
    )
    cost_confirmed: bool = strawberry.field(
        description="Whether the checks that cost money may run (`confirmCost`)."
    )
    estimated_cost_usd: float = strawberry.field(
        description="Roughly what running every check costs (0 with placeholders)."
    )
    spent_usd: float = strawberry.field(
        description="What the checks that ran cost, by the provider's usage and list prices."
    )
    checks: list[DiagnosticCheck]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: tables.DiagnosticRun) -> DiagnosticsRun:
        assert row.id is not None
        checks = [DiagnosticCheck.of(check) for check in row.checks]
        return cls(
            pk=row.id,
            suite=diagnostics.Suite(row.suite),
            status=DiagnosticsRunStatus(row.status),
            placeholder=row.placeholder,
            cost_confirmed=row.allow_paid,
            estimated_cost_usd=row.estimated_cost_usd,
            spent_usd=round(sum(check.estimated_cost_usd or 0.0 for check in checks), 4),
            checks=checks,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


@strawberry.input
class RunDiagnosticsInput:
    suite: DiagnosticsSuite  # type: ignore[valid-type]
    confirm_cost: bool = strawberry.field(
        default=False,
        description="Let the checks that cost money run (with an OpenAI key); without it they "
        "are SKIPPED, saying what they would cost.",
    )


@strawberry.type
class RunDiagnosticsPayload(Payload):
    run: DiagnosticsRun | None = None


@strawberry.type(description="A change of a diagnostics run, with the run after it.")
class DiagnosticsRunEvent:
    kind: DiagnosticsEventKind  # type: ignore[valid-type]
    run: DiagnosticsRun
    check: DiagnosticCheck | None = strawberry.field(
        description="With CHECK_FINISHED: the check that has its result."
    )
