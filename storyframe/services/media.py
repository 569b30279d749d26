"""Where image bytes go, what an image may be, and how many are decoded at once: the parts that
uploads and generation share."""

from __future__ import annotations

from dataclasses import dataclass

from storyframe.domain.ports import BlobStorage, FileReleaser
from storyframe.services.decoding import DecodeSlots
from storyframe.services.image_files import ImageLimits
from storyframe.services.temporaries import Temporaries


@dataclass(frozen=True, slots=True)
class Media:
    """Where image bytes go, what an upload may be, and how many images are decoded at once."""

    storage: BlobStorage
    files: FileReleaser
    """Releases stored files no row needs any more."""
    limits: ImageLimits
    max_files: int
    """How many files one upload may carry."""
    temporaries: Temporaries
    """Where an image is written to be checked before it is stored."""
    decodes: DecodeSlots
    """The process's slots for decoding images, shared by uploads and generations."""
