"""Reading a row that must be there, and editing or renaming one: what most services' steps
start with."""

from __future__ import annotations

from typing import TypeVar

from sqlmodel import SQLModel

from storyframe.db.tables import NAME_MAX, utcnow
from storyframe.domain.errors import NotFound
from storyframe.domain.ports import Repository, UnitOfWork
from storyframe.services.validation import clean_name

Row = TypeVar("Row", bound=SQLModel)


async def found(repo: Repository, model: type[Row], id: int, label: str, field: str = "id") -> Row:
    """The row, or NotFound naming `label` (\"main chat\") and the input `field` it came from."""
    row = await repo.get(model, id)
    if row is None:
        raise NotFound(label, [field])
    return row


async def edit(uow: UnitOfWork, model: type[Row], id: int, label: str, **changes: object) -> Row:
    """Set `changes` on the row, stamp its `updated_at`, and commit."""
    async with uow() as repo:
        row = await found(repo, model, id, label)
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        await repo.save(row)
        await repo.commit()
    return row


async def renamed(uow: UnitOfWork, model: type[Row], id: int, label: str, name: str) -> Row:
    """The row named `name`, made tidy (see `clean_name`) and checked first."""
    return await edit(uow, model, id, label, name=clean_name(name, "name", NAME_MAX))
