"""Diagnostics: is Storyframe set up right, from the provider up to an exported storyboard?

Two suites of checks, each reported as it finishes, for a page that follows a run and for
`storyframe selftest` in a terminal:

- `Suite.OPENAI` asks the provider directly, as cheaply as it allows: a one-line text answer, one
  image (lowest quality, smallest size), a vision answer about it, an edit with it as the
  reference, and whether the configured models are offered and live (one shutting down within
  30 days passes with a warning; one shut down or not offered fails).
- `Suite.API` goes the product's way, as a user: the configuration, a generation, one with a
  reference image, an analysis, and the full flow from a video to its PDF storyboard, all in a
  scratch project deleted at the end whatever happened.

Without an OpenAI key every check runs against the placeholder provider, and says so. Checks
that cost money run only when `DiagnosticsEnv.allow_paid` says they may; otherwise they are
SKIPPED with what they would cost. A check never raises: what goes wrong is its FAILED result,
with an error code, and the checks after it still run unless they need its output (then they
are SKIPPED, naming it). Requests and responses are JSON with secrets redacted and images
described by their size.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from storyframe.services.diagnostics.api_checks import run_api_suite
from storyframe.services.diagnostics.costs import estimated_cost
from storyframe.services.diagnostics.env import DiagnosticsEnv
from storyframe.services.diagnostics.provider_checks import run_provider_suite
from storyframe.services.diagnostics.results import (
    INTERNAL_ERROR,
    REDACTED,
    CheckImage,
    CheckResult,
    CheckStatus,
    Suite,
    failed,
    redacted,
    total_cost,
)
from storyframe.services.diagnostics.running import Runner
from storyframe.services.diagnostics.suites import plan

__all__ = [
    "INTERNAL_ERROR",
    "REDACTED",
    "CheckImage",
    "CheckResult",
    "CheckStatus",
    "DiagnosticsEnv",
    "Suite",
    "estimated_cost",
    "failed",
    "plan",
    "redacted",
    "run_suite",
    "total_cost",
]


async def run_suite(
    suite: Suite,
    env: DiagnosticsEnv,
    *,
    on_check: Callable[[CheckResult], Awaitable[None]] | None = None,
) -> list[CheckResult]:
    """Run the suite's checks in the order `plan` gives, awaiting `on_check` with each result
    as soon as it is known; the results, in the same order. The API suite needs
    `env.services` (ValueError without them, before anything runs)."""
    runner = Runner(env, on_check)
    if suite is Suite.OPENAI:
        await run_provider_suite(runner)
    else:
        if env.services is None:
            raise ValueError("the API suite runs as a user: DiagnosticsEnv.services is needed")
        await run_api_suite(runner, env.services)
    return runner.results
