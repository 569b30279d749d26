"""Places an image can appear in, and chats a message can belong to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class PlaceKind(Enum):
    FRAME = "frame"
    CONTEXT = "context"
    MAIN_CHAT = "main_chat"
    GALLERY = "gallery"

    @property
    def is_chat(self) -> bool:
        return self is not PlaceKind.GALLERY


@dataclass(frozen=True, slots=True)
class Place:
    """A frame, a context or a main chat (all of them chats), or a project's gallery."""

    kind: PlaceKind
    id: int

    @property
    def label(self) -> str:
        return self.kind.value.replace("_", " ")


@dataclass(frozen=True, slots=True)
class PlaceOwner:
    """Where a place lives: its project, and its video (None for a gallery)."""

    project_id: int
    video_id: int | None
