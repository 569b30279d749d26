"""`storyframe serve | worker | migrate | gc | selftest | export-schema`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

from storyframe.services.temporaries import STALE_AFTER_SECONDS
from storyframe.settings import Settings

log = logging.getLogger("storyframe")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storyframe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API server (uvicorn)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    commands.add_parser(
        "worker",
        help="run generations from PostgreSQL's task queue (for API processes with "
        "GENERATION_JOBS_IN_PROCESS=false)",
    )
    commands.add_parser("migrate", help="apply the database migrations")
    collect = commands.add_parser(
        "gc",
        help="remove stored files no image references, and temporary files and previews a "
        "stopped process left; report images whose file is gone",
    )
    collect.add_argument("--dry-run", action="store_true", help="report only, delete nothing")
    collect.add_argument(
        "--temp-age",
        type=_seconds,
        default=STALE_AFTER_SECONDS,
        metavar="SECONDS",
        help="remove temporary files untouched for this long (default: %(default)g; "
        "younger ones may be writes in progress)",
    )
    selftest = commands.add_parser(
        "selftest",
        help="check the set-up: the provider's own calls, or the product's path as a user",
    )
    selftest.add_argument(
        "--suite",
        choices=["openai", "api"],
        default="openai",
        help="openai: text, an image, vision, an edit and the models, asked of the provider; "
        "api: a generation, one with a reference, an analysis and a PDF export, through the "
        "services, in a scratch project deleted afterwards (default: %(default)s)",
    )
    selftest.add_argument(
        "--yes",
        action="store_true",
        help="run the checks that cost money (with OpenAI: a few US cents; without a key "
        "nothing costs money)",
    )
    selftest.add_argument(
        "--json", action="store_true", help="print the results as JSON, and nothing else"
    )
    export = commands.add_parser("export-schema", help="print or write the GraphQL SDL")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)

    if args.command == "export-schema":
        return _export_schema(args.output)
    settings = Settings()
    from storyframe.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    if args.command == "migrate":
        asyncio.run(_migrate(settings, only_if_empty=False))
        return 0
    if args.command == "gc":
        return asyncio.run(_collect(settings, dry_run=args.dry_run, temp_age=args.temp_age))
    if args.command == "worker":
        return asyncio.run(_worker(settings))
    if args.command == "selftest":
        return asyncio.run(_selftest(settings, args.suite, yes=args.yes, as_json=args.json))
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    return _serve(settings.model_copy(update=overrides))


def _export_schema(output: Path | None) -> int:
    from storyframe.api_schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl)
    return 0


async def _migrate(settings: Settings, *, only_if_empty: bool) -> None:
    from storyframe.db.engine import create_engine
    from storyframe.db.migrate import current_revision, is_empty, upgrade

    engine = create_engine(settings.resolved_database_url)
    try:
        if only_if_empty and not await is_empty(engine):
            return
        before = await current_revision(engine)
        await upgrade(engine)
        after = await current_revision(engine)
        if before == after:
            log.info("database schema is current", extra={"revision": after})
        else:
            log.info("database migrated", extra={"from_revision": before, "to_revision": after})
    finally:
        await engine.dispose()


async def _worker(settings: Settings) -> int:
    """Run generations until SIGTERM or SIGINT, then hand back what is unfinished."""
    if not settings.uses_postgres:
        log.error(
            "storyframe worker needs PostgreSQL (DATABASE_URL=postgresql+asyncpg://...); "
            "with SQLite, generations run in the API process"
        )
        return 2
    from alembic.script import ScriptDirectory

    from storyframe.db.migrate import alembic_config, current_revision
    from storyframe.events.wire import asyncpg_dsn
    from storyframe.jobs.exports import ExportJobs
    from storyframe.jobs.worker import ExportWork, Worker
    from storyframe.runtime import build_runtime
    from storyframe.services.generation.types import CUT_SHORT_SECONDS

    runtime = build_runtime(settings.model_copy(update={"generation_jobs_in_process": False}))
    try:
        revision = await current_revision(runtime.engine)
    except Exception as error:
        await runtime.aclose(drain_seconds=0)
        log.error("storyframe worker cannot reach the database: %s", error)
        return 1
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision != head:
        await runtime.aclose(drain_seconds=0)
        log.error(
            "the database schema is at %s, not %s: run `storyframe migrate` first", revision, head
        )
        return 1
    assert runtime.grants is not None  # PostgreSQL, generations left to workers
    worker = Worker(
        dsn=asyncpg_dsn(settings.resolved_database_url),
        engine=runtime.engine,
        grants=runtime.grants,
        store=runtime.job_store,
        events=runtime.events,
        work=runtime.run_job,
        clock=runtime.generator.clock,
        concurrency=settings.worker_concurrency,
        heartbeat_seconds=settings.generation_heartbeat_seconds,
        grace_seconds=settings.generation_shutdown_grace_seconds,
        record_seconds=CUT_SHORT_SECONDS,
        exports=ExportWork(
            work=runtime.run_export,
            store=runtime.export_store,
            jobs=ExportJobs(),
            concurrency=settings.export_running,
        ),
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    try:
        await runtime.start()
        await worker.run()
    finally:
        await runtime.aclose(drain_seconds=0)
    log.info("worker stopped")
    return 0


async def _collect(settings: Settings, *, dry_run: bool, temp_age: float) -> int:
    """Print what drifted apart between storage and the database, and the temporary files a
    stopped server left, as JSON; fix what can be."""
    import orjson

    from storyframe.runtime import build_runtime

    runtime = build_runtime(settings)
    try:
        janitor = runtime.janitor
        drift = await (janitor.drift() if dry_run else janitor.collect())
        temporaries = runtime.media.temporaries
        stale = await asyncio.to_thread(temporaries.stale, temp_age)
        removed = 0 if dry_run else await asyncio.to_thread(temporaries.remove, stale)
        previews = 0
        if settings.uses_postgres and not dry_run:
            from storyframe.events.previews import delete_stale_previews

            previews = await delete_stale_previews(settings.resolved_database_url)
    finally:
        await runtime.aclose(drain_seconds=0)
    report = {
        "orphanFiles": drift.orphan_keys,
        "removed": 0 if dry_run else len(drift.orphan_keys),
        "imagesMissingFiles": drift.images_missing_files,
        "staleTemporaries": sorted(_shown(path, settings.data_dir) for path in stale),
        "removedTemporaries": removed,
        "removedPreviews": previews,
    }
    sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _seconds(value: str) -> float:
    seconds = float(value)
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}")
    return seconds


def _shown(path: Path, data_dir: Path) -> str:
    """A path as the report shows it: within the data directory when it is there."""
    try:
        return path.relative_to(data_dir).as_posix()
    except ValueError:
        return str(path)


async def _selftest(settings: Settings, suite: str, *, yes: bool, as_json: bool) -> int:
    """Run a diagnostics suite in the terminal; exit 1 when a check failed."""
    from storyframe.selftest import run_selftest
    from storyframe.services.diagnostics import Suite

    chosen = Suite(suite.upper())
    if chosen is Suite.API and settings.resolved_database_url.startswith("sqlite"):
        # As `serve` does: a new SQLite database is created and migrated.
        await _migrate(settings, only_if_empty=True)
    return await run_selftest(settings, chosen, yes=yes, as_json=as_json)


def _serve(settings: Settings) -> int:
    # Take the address first: when it is not free, say so before anything is announced or done.
    try:
        sock = _bind(settings.host, settings.port)
    except OSError as error:
        log.error("%s", _bind_error(settings.host, settings.port, error))
        return 1
    with sock:
        import uvicorn

        from storyframe.app import create_app

        if settings.resolved_database_url.startswith("sqlite"):
            # The embedded default needs no set-up: a new SQLite database is created and migrated.
            asyncio.run(_migrate(settings, only_if_empty=True))
        app = create_app(settings)
        tune_collector()
        log.info("serving on http://%s:%s/graphql", settings.host, settings.port)
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the previous
        # handler; with the default one the process would die of it (exit -15) instead of
        # exiting 0. On SIGINT (Ctrl-C) the signal raised again is a KeyboardInterrupt.
        signal.signal(signal.SIGTERM, _exit_cleanly)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            proxy_headers=True,
            timeout_graceful_shutdown=10,
        )
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    return 0 if server.started else 1


YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations between two collections of the youngest objects (Python's default is 700)."""


def tune_collector() -> None:
    """Called once the app is built. What exists then lives as long as the process: it leaves
    the collector's sight, which otherwise walks it again and again (a third of the CPU under
    load). And the youngest objects are collected every 10,000 allocations instead of 700: a
    request's objects mostly die with it, and a list of a storyboard allocates hundreds of
    thousands, so collecting them less often halves the time spent collecting (bench/README.md)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to the address, as uvicorn would bind it (it listens once started)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_error(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use; set PORT or stop the other server"
    return f"cannot listen on {host} port {port}: {error.strerror or error}"


def _exit_cleanly(_signal: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    raise SystemExit(main())
