"""What the tests read of the database itself: statements run, every row, lock waits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel


@dataclass
class StatementCounter:
    """Counts the SQL statements an engine executes while `counting` is on."""

    counting: bool = False
    statements: list[str] = field(default_factory=list)

    def attach(self, engine: AsyncEngine | Engine) -> None:
        target = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

        @event.listens_for(target, "before_cursor_execute")
        def _count(*args: Any) -> None:
            statement = args[2]
            if self.counting and not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
                self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        self.statements.clear()
        self.counting = True
        return self

    def __exit__(self, *_: object) -> None:
        self.counting = False


def counting(*engines: AsyncEngine | Engine) -> StatementCounter:
    """A counter of the engines' statements (a runtime's `engines`), off until entered."""
    counter = StatementCounter()
    for engine in engines:
        counter.attach(engine)
    return counter


Dump = dict[str, list[tuple[Any, ...]]]


BOOKKEEPING = frozenset({"login_attempts"})
"""Tables that count requests rather than hold what users made: an attempt refused for its
input is still an attempt, counted against the rate limits."""


async def dump(engine: AsyncEngine) -> Dump:
    """Every row of every table but the bookkeeping, in a stable order."""
    rows: Dump = {}
    async with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in BOOKKEEPING:
                continue
            result = await connection.execute(select(table).order_by(*table.columns))
            rows[table.name] = [tuple(row) for row in result.all()]
    return rows


async def waiting_for_locks(engine: AsyncEngine) -> int:
    """How many PostgreSQL backends of the engine's database wait for a lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    async with engine.connect() as connection:
        return int(await connection.scalar(waiting) or 0)


async def until_waiting_for_locks(engine: AsyncEngine, count: int, seconds: float = 10) -> None:
    """Wait until `count` PostgreSQL backends of the engine's database wait for a lock."""
    async with asyncio.timeout(seconds):
        while await waiting_for_locks(engine) < count:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.01)
