"""Which storage keys the images table references, across every owner."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from storyframe.db.tables import Image
from storyframe.domain.ports import BlobIndex


class SqlBlobIndex(BlobIndex):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def keys_in_use(self, keys: Collection[str]) -> set[str]:
        async with self._sessions() as session:
            statement = select(col(Image.storage_key)).where(col(Image.storage_key).in_(list(keys)))
            return set((await session.scalars(statement.distinct())).all())

    async def all_keys(self) -> set[str]:
        async with self._sessions() as session:
            return set((await session.scalars(select(col(Image.storage_key)).distinct())).all())

    async def images_with_key(self, keys: Collection[str]) -> list[int]:
        async with self._sessions() as session:
            statement = select(col(Image.id)).where(col(Image.storage_key).in_(list(keys)))
            return [pk for pk in (await session.scalars(statement)).all() if pk is not None]
