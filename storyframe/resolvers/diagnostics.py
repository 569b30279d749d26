"""Diagnostics in the API: `runDiagnostics` (its events are the Subscription root's, the run a
`node`)."""

from __future__ import annotations

import strawberry

from storyframe.resolvers.mutation import mutation
from storyframe.schema.diagnostics import (
    DiagnosticsRun,
    RunDiagnosticsInput,
    RunDiagnosticsPayload,
)
from storyframe.schema.request_context import Info_
from storyframe.services.diagnostics import Suite


@strawberry.type
class DiagnosticsMutation:
    @mutation(
        "Run the diagnostics' checks as the viewer: OPENAI (the provider itself) or API (the "
        "whole product path). Answers at once with a QUEUED run; follow it with "
        "`diagnosticsRunUpdated`. One run at a time per user."
    )
    async def run_diagnostics(
        self, info: Info_, input: RunDiagnosticsInput
    ) -> RunDiagnosticsPayload:
        services = info.context.services
        env = info.context.app.diagnostics_env(services)
        row = await services.diagnostics.start(Suite(input.suite), env, input.confirm_cost)
        return RunDiagnosticsPayload(run=DiagnosticsRun.from_row(row))
