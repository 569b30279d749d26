"""Upper bounds on the lists the API serves whole rather than in pages. A query's cost counts
each such list at its bound, so the services refuse to grow a list past it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ListLimits:
    frames_per_video: int = 500  # a video's `frames`
    main_chats_per_video: int = 50  # a video's `mainChats`
    image_places: int = 100  # the frames, contexts, main chats and galleries of `appearsIn`

    def __post_init__(self) -> None:
        for name in ("frames_per_video", "main_chats_per_video", "image_places"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
