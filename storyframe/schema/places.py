"""The places an image appears in."""

from __future__ import annotations

from typing import Annotated

import strawberry

from storyframe.schema.chats import Context, Frame, MainChat
from storyframe.schema.projects import Project

ImagePlace = Annotated[
    Frame | Context | MainChat | Project,
    strawberry.union(
        "ImagePlace", description="A place an image appears in; a project means its gallery."
    ),
]
