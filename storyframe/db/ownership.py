"""Which rows belong to whom: every row hangs off a project, and a project has an owner."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, ColumnElement, select
from sqlmodel import col

from storyframe.db import tables
from storyframe.db.tables import Image, Project, Video


def owned_by(model: Any, owner_id: int | BindParameter[int]) -> ColumnElement[bool]:
    """A condition that holds for the rows of `model` that belong to the user `owner_id`."""
    projects = select(col(Project.id)).where(col(Project.owner_id) == owner_id)
    if model is Project:
        return col(Project.owner_id) == owner_id
    if model is tables.DiagnosticRun:
        return col(tables.DiagnosticRun.owner_id) == owner_id
    if model is Video:
        return col(Video.project_id).in_(projects)
    if model is Image:
        return col(Image.project_id).in_(projects)
    if model in (
        tables.Context,
        tables.Frame,
        tables.MainChat,
        tables.Message,
        tables.Generation,
        tables.Export,
    ):
        videos = select(col(Video.id)).where(col(Video.project_id).in_(projects))
        condition: ColumnElement[bool] = model.video_id.in_(videos)
        return condition
    raise TypeError(f"{model.__name__} has no owner")
