"""Which storage keys the database references (images, and exports' files and subtitles),
across every owner."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, union
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from storyframe.db.tables import Export, Image
from storyframe.domain.ports import BlobIndex

KEYS_PER_STATEMENT = 1000

_COLUMNS = (col(Image.storage_key), col(Export.storage_key), col(Export.subtitles_key))


def _referenced(keys: Collection[str] | None) -> Any:
    """Every key a row references (of `keys`, when given)."""
    parts: list[Select[Any]] = []
    for column in _COLUMNS:
        statement = select(column).where(column.is_not(None))
        if keys is not None:
            statement = statement.where(column.in_(list(keys)))
        parts.append(statement)
    return union(*parts)


class SqlBlobIndex(BlobIndex):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def keys_in_use(self, keys: Collection[str]) -> set[str]:
        wanted = sorted(keys)
        found: set[str] = set()
        async with self._sessions() as session:
            # In slices: the statement names them three times, and drivers bound parameters.
            for start in range(0, len(wanted), KEYS_PER_STATEMENT):
                chunk = wanted[start : start + KEYS_PER_STATEMENT]
                found |= {str(k) for k in (await session.execute(_referenced(chunk))).scalars()}
        return found

    async def all_keys(self) -> set[str]:
        async with self._sessions() as session:
            return {str(key) for key in (await session.execute(_referenced(None))).scalars()}

    async def images_with_key(self, keys: Collection[str]) -> list[int]:
        async with self._sessions() as session:
            statement = select(col(Image.id)).where(col(Image.storage_key).in_(list(keys)))
            return [pk for pk in (await session.scalars(statement)).all() if pk is not None]
