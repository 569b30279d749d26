"""Running one check: skipped when it costs money that may not be spent or when the check it
needs did not pass, timed, its failure caught and reported rather than raised, its request and
response redacted, and handed to whoever follows the run as soon as it is done."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from storyframe.domain.errors import DomainError
from storyframe.domain.image_provider import ProviderError
from storyframe.services.diagnostics.costs import check_cost
from storyframe.services.diagnostics.env import DiagnosticsEnv
from storyframe.services.diagnostics.results import (
    INTERNAL_ERROR,
    CheckResult,
    CheckStatus,
    one_line,
    redacted,
    scrubbed,
)
from storyframe.services.diagnostics.suites import CheckSpec

log = logging.getLogger("storyframe.diagnostics")

OnCheck = Callable[[CheckResult], Awaitable[None]]
Body = Callable[[CheckResult], Awaitable[None]]
"""What a check does: it fills in the result it is given (PASSED until it says otherwise) and
may raise; `Runner.run` turns what it raises into a FAILED result."""


class Runner:
    """Runs the checks of one suite in turn and keeps their results."""

    def __init__(self, env: DiagnosticsEnv, on_check: OnCheck | None) -> None:
        self.env = env
        self.results: list[CheckResult] = []
        self._on_check = on_check

    def result_of(self, name: str) -> CheckResult | None:
        return next((result for result in self.results if result.name == name), None)

    async def run(self, spec: CheckSpec, body: Body, *, skip: str | None = None) -> CheckResult:
        """Run `body` as the check `spec` (or skip it, saying `skip` or why it cannot run),
        report it, and return its result."""
        result = CheckResult(spec.name, spec.title, CheckStatus.PASSED)
        reason = skip or self._cannot_run(spec)
        if reason is not None:
            result.status = CheckStatus.SKIPPED
            result.skipped_reason = reason
            result.detail = reason
        else:
            started = time.monotonic()
            try:
                await body(result)
            except ProviderError as error:
                result.fail(error.failure.value, error.message)
            except DomainError as error:
                result.fail(error.code.value, error.message)
            except Exception as error:
                log.exception("a diagnostics check failed unexpectedly", extra={"check": spec.name})
                result.fail(INTERNAL_ERROR, str(error) or type(error).__name__)
            result.duration_ms = round((time.monotonic() - started) * 1000, 1)
        self._clean(result)
        self.results.append(result)
        if self._on_check is not None:
            await self._on_check(result)
        return result

    def _cannot_run(self, spec: CheckSpec) -> str | None:
        env = self.env
        if spec.paid and not env.allow_paid and not env.provider.placeholder:
            cost = check_cost(
                spec, env.image_model, env.vision_model, partial_images=env.partial_images
            )
            return f"costs money: {env.paid_hint} (about ${cost:.3f})"
        if spec.needs is not None:
            needed = self.result_of(spec.needs)
            if needed is None or needed.status is not CheckStatus.PASSED:
                how = "was skipped" if needed and needed.status is CheckStatus.SKIPPED else "failed"
                title = needed.title if needed else spec.needs
                return f"needs the image of {spec.needs} ({title}), which {how}"
        return None

    def _clean(self, result: CheckResult) -> None:
        """No secret leaves a check, and its texts are one line."""
        secrets = self.env.secrets
        result.request = redacted(result.request, secrets)
        result.response = redacted(result.response, secrets)
        result.detail = one_line(scrubbed(result.detail, secrets))
        if result.warning is not None:
            result.warning = one_line(scrubbed(result.warning, secrets))
        if result.error is not None:
            result.error = scrubbed(result.error, secrets)
