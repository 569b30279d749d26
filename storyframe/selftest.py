"""`storyframe selftest`: the diagnostics in a terminal.

`--suite openai` (the default) asks the provider directly; `--suite api` goes the product's way
as the account `selftest@storyframe.invalid` (made on first use, with a random password nobody
needs), in a scratch project deleted at the end. With OpenAI, the checks that cost money run
only with `--yes`; the others say what they would cost. A terminal sees each check turn from
pending to its status as it finishes, then a table of all of them and what the run cost;
`--json` prints the results as JSON and nothing else. The exit status is 1 when a check failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from collections.abc import Iterator
from datetime import date
from typing import TextIO

import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from storyframe.db.accounts import SqlAccountStore
from storyframe.db.tables import utcnow
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.runtime import Runtime, build_provider, build_runtime, image_defaults
from storyframe.services.diagnostics import (
    CheckResult,
    CheckStatus,
    DiagnosticsEnv,
    Suite,
    estimated_cost,
    failed,
    plan,
    run_suite,
    total_cost,
)
from storyframe.settings import Settings

ACCOUNT = "selftest@storyframe.invalid"
PAID_HINT = "run with --yes"
STOP_SECONDS = 10.0
_STYLES = {
    CheckStatus.PASSED: "bold green",
    CheckStatus.FAILED: "bold red",
    CheckStatus.SKIPPED: "yellow",
}


async def run_selftest(
    settings: Settings,
    suite: Suite,
    *,
    yes: bool,
    as_json: bool,
    out: TextIO | None = None,
    terminal: bool | None = None,
) -> int:
    """Run the suite, show it on `out` (stdout), and answer the exit status. `terminal` says
    whether `out` shows a live display (by default: whether it is a terminal)."""
    console = Console(file=out or sys.stdout, highlight=False, force_terminal=terminal)
    if suite is Suite.OPENAI:
        provider = build_provider(settings)
        try:
            env = DiagnosticsEnv(
                provider,
                image_defaults(settings),
                date.today(),
                storage_backend=settings.storage_backend,
                database_dialect=_dialect(settings),
                allow_paid=yes,
                paid_hint=PAID_HINT,
                secrets=_secrets(settings),
            )
            return await _run(suite, env, console, as_json)
        finally:
            await provider.aclose()
    runtime = build_runtime(settings)
    tending: list[asyncio.Task[None]] = []
    try:
        await _start_jobs(runtime, tending)
        services = runtime.services_for(await _account(runtime))
        env = DiagnosticsEnv.of_services(
            services,
            storage_backend=settings.storage_backend,
            database_dialect=_dialect(settings),
            allow_paid=yes,
            paid_hint=PAID_HINT,
            secrets=_secrets(settings),
        )
        return await _run(suite, env, console, as_json)
    finally:
        runtime.runner.stop_tending()
        runtime.exports_runner.stop_tending()
        if tending:
            await asyncio.wait(tending, timeout=STOP_SECONDS)
        for task in tending:
            task.cancel()
        await runtime.aclose()


async def _start_jobs(runtime: Runtime, tending: list[asyncio.Task[None]]) -> None:
    """Run generations and exports in this process, as the API process does (unless they are
    left to workers): what this process runs is said to be alive while it runs."""
    await runtime.start()
    settings = runtime.settings
    if not settings.generation_jobs_in_process:
        return
    heartbeat = settings.generation_heartbeat_seconds
    for runner, store in (
        (runtime.runner, runtime.job_store),
        (runtime.exports_runner, runtime.export_store),
    ):
        runner.start()
        await runner.tend_once(store, utcnow, heartbeat * 3)
        tending.append(asyncio.create_task(runner.tend(store, utcnow, heartbeat, heartbeat * 3)))


async def _account(runtime: Runtime) -> int:
    """The id of the self-test's account, made on first use."""
    store = SqlAccountStore(runtime.sessions, runtime.reads)
    user = await store.user_by_email(ACCOUNT)
    if user is None:
        try:
            password = secrets.token_urlsafe(24)
            user = (await runtime.accounts.sign_up(ACCOUNT, password, "selftest")).user
        except DomainError as error:  # made meanwhile by another self-test
            if error.code is not ErrorCode.TAKEN:
                raise
            user = await store.user_by_email(ACCOUNT)
    assert user is not None
    assert user.id is not None
    return user.id


def _dialect(settings: Settings) -> str:
    return "postgresql" if settings.uses_postgres else "sqlite"


def _secrets(settings: Settings) -> tuple[str, ...]:
    found = [settings.openai_api_key.get_secret_value() if settings.openai_api_key else None]
    found.append(settings.cloudinary_url)
    return tuple(secret for secret in found if secret)


async def _run(suite: Suite, env: DiagnosticsEnv, console: Console, as_json: bool) -> int:
    whole = estimated_cost(
        suite,
        env.provider.placeholder,
        env.image_model,
        env.vision_model,
        partial_images=env.partial_images,
    )
    if as_json:
        results = await run_suite(suite, env)
        report = {
            "suite": suite.value,
            "ok": not failed(results),
            "provider": env.provider.name,
            "imageModel": env.image_model,
            "visionModel": env.vision_model,
            "estimatedCostUsd": total_cost(results),
            "suiteEstimatedCostUsd": whole,
            "checks": [result.as_json() for result in results],
        }
        console.file.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 1 if failed(results) else 0
    console.print(Text(_intro(suite, env, whole)))
    if console.is_terminal:
        shown: list[CheckResult] = []
        live = Live(_progress(suite, shown), console=console, auto_refresh=False, transient=True)
        with live, _logs_above_the_display():

            async def show(result: CheckResult) -> None:
                shown.append(result)
                live.update(_progress(suite, shown), refresh=True)

            results = await run_suite(suite, env, on_check=show)
    else:
        results = await run_suite(suite, env)
    console.print(_summary(suite, results))
    console.print(Text(_outro(results)))
    return 1 if failed(results) else 0


@contextlib.contextmanager
def _logs_above_the_display() -> Iterator[None]:
    """While the live display runs, log lines written to the terminal go above it (through the
    display's own stderr) rather than through it."""
    terminal = sys.__stderr__
    moved = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is terminal
    ]
    for handler in moved:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler in moved:
            handler.setStream(terminal)


def _intro(suite: Suite, env: DiagnosticsEnv, whole: float) -> str:
    provider = env.provider
    if provider.placeholder:
        return f"Suite {suite.value}: placeholder provider (no OpenAI key), so nothing costs money."
    if env.allow_paid:
        return f"Suite {suite.value}: {provider.name}; this run costs about ${whole:.3f}."
    return (
        f"Suite {suite.value}: {provider.name}; the checks that cost money are skipped: "
        f"{PAID_HINT} (about ${whole:.3f} for the suite)."
    )


def _outro(results: list[CheckResult]) -> str:
    counts = dict.fromkeys(CheckStatus, 0)
    for result in results:
        counts[result.status] += 1
    tally = ", ".join(f"{count} {status.value.lower()}" for status, count in counts.items())
    return f"{tally}. Estimated cost of this run: ${total_cost(results):.4f}."


def _progress(suite: Suite, done: list[CheckResult]) -> Table:
    """Every check of the suite: those done with their status and time, the one running, and
    those still pending."""
    table = Table(title=f"storyframe selftest --suite {suite.value.lower()}")
    table.add_column("Check")
    table.add_column("Status")
    table.add_column("Duration", justify="right")
    results = {result.name: result for result in done}
    running_shown = False
    for name, title in plan(suite):
        result = results.get(name)
        if result is not None:
            table.add_row(Text(title), _status(result), Text(_duration(result)))
        elif not running_shown:
            running_shown = True
            table.add_row(Text(title), Text("running…", style="cyan"), Text(""))
        else:
            table.add_row(Text(title), Text("pending", style="dim"), Text(""))
    return table


def _summary(suite: Suite, results: list[CheckResult]) -> Table:
    table = Table(title=f"storyframe selftest --suite {suite.value.lower()}")
    table.add_column("Check", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Duration", justify="right", no_wrap=True)
    table.add_column("Detail")
    for result in results:
        detail = Text(result.detail)
        if result.warning:
            detail.append(f"\nwarning: {result.warning}", style="yellow")
        table.add_row(Text(result.title), _status(result), Text(_duration(result)), detail)
    return table


def _status(result: CheckResult) -> Text:
    return Text(result.status.value, style=_STYLES[result.status])


def _duration(result: CheckResult) -> str:
    if result.duration_ms is None:
        return ""
    if result.duration_ms < 1000:
        return f"{result.duration_ms:.0f} ms"
    return f"{result.duration_ms / 1000:.1f} s"
