"""The PostgreSQL task queue's tables (pgqueuer), named here once rather than read from the
environment, so every process and every migration agrees on them."""

from __future__ import annotations

from pgqueuer.adapters.persistence.schema_ddl import render_install, render_uninstall
from pgqueuer.domain.settings import DBSettings

QUEUE_SETTINGS = DBSettings(
    prefix="",
    db_schema=None,
    channel="storyframe_jobs",
    function="fn_pgqueuer_changed",
    trigger="tg_pgqueuer_changed",
    statistics_table="pgqueuer_statistics",
    queue_status_type="pgqueuer_status",
    queue_table="pgqueuer",
    queue_table_log="pgqueuer_log",
    schedules_table="pgqueuer_schedules",
)
"""pgqueuer reads its names from PGQUEUER_* (and bare QUEUE_TABLE-like) variables when left to
itself; Storyframe fixes them."""

QUEUE_TABLES = frozenset(
    {
        QUEUE_SETTINGS.queue_table,
        QUEUE_SETTINGS.queue_table_log,
        QUEUE_SETTINGS.statistics_table,
        QUEUE_SETTINGS.schedules_table,
    }
)
"""The task queue's tables: Storyframe's own metadata does not describe them."""


def install_sql() -> str:
    return render_install(QUEUE_SETTINGS, create_schema=False)


def uninstall_sql() -> str:
    return render_uninstall(QUEUE_SETTINGS)


def ours(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's comparisons: Storyframe's tables only, the task queue's belong to pgqueuer."""
    return not (type_ == "table" and name in QUEUE_TABLES)
