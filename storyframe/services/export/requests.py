"""What a person asks of an export, checked, and what a whole process shares to run exports."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from storyframe.db.tables import Export, utcnow
from storyframe.domain.errors import DomainError, ErrorCode
from storyframe.domain.exports import ExportFormat
from storyframe.domain.jobs import Events, ExportEvent, ExportEventKind, JobQueue
from storyframe.domain.ports import BlobStorage, FileReleaser
from storyframe.services.export.sheets import Captions, Fit, Layout, Resolution, Transition
from storyframe.services.temporaries import Temporaries

MIN_SECONDS_PER_FRAME = 0.1
MAX_SECONDS_PER_FRAME = 600.0
MAX_TRANSITION_MS = 5_000


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Everything an export may be asked besides its video and format, with the defaults a
    person exporting a storyboard expects."""

    resolution: Resolution = Resolution.P1080
    fps: int = 24
    seconds_per_frame: float = 3.0
    """How long a frame without a duration of its own is shown."""
    transition: Transition = Transition.NONE
    transition_ms: int = 500
    captions: Captions = Captions.NONE
    fit: Fit = Fit.LETTERBOX
    layout: Layout = Layout.GRID_2X2
    """The PDF storyboard's frames per page (the PDF, and the one inside the ZIP)."""

    def checked(self) -> ExportOptions:
        if not 1 <= self.fps <= 60:
            raise DomainError(ErrorCode.INVALID, "fps must be 1 to 60", ["fps"])
        if not MIN_SECONDS_PER_FRAME <= self.seconds_per_frame <= MAX_SECONDS_PER_FRAME:
            raise DomainError(
                ErrorCode.INVALID,
                f"secondsPerFrame must be {MIN_SECONDS_PER_FRAME} to {MAX_SECONDS_PER_FRAME:g}",
                ["secondsPerFrame"],
            )
        if not 0 <= self.transition_ms <= MAX_TRANSITION_MS:
            raise DomainError(
                ErrorCode.INVALID,
                f"transitionMs must be 0 to {MAX_TRANSITION_MS}",
                ["transitionMs"],
            )
        return self

    def as_record(self) -> dict[str, object]:
        return {
            key: str(value) if isinstance(value, str) else value
            for key, value in asdict(self).items()
        }

    @classmethod
    def of_record(cls, record: dict[str, object]) -> ExportOptions:
        """The options an export row keeps (unknown keys, from a later version, are ignored)."""
        default = cls()
        return cls(
            resolution=Resolution(str(record.get("resolution", default.resolution))),
            fps=int(str(record.get("fps", default.fps))),
            seconds_per_frame=float(
                str(record.get("seconds_per_frame", default.seconds_per_frame))
            ),
            transition=Transition(str(record.get("transition", default.transition))),
            transition_ms=int(str(record.get("transition_ms", default.transition_ms))),
            captions=Captions(str(record.get("captions", default.captions))),
            fit=Fit(str(record.get("fit", default.fit))),
            layout=Layout(str(record.get("layout", default.layout))),
        )


@dataclass(frozen=True, slots=True)
class ExportRequest:
    video_id: int
    format: ExportFormat
    options: ExportOptions = field(default_factory=ExportOptions)
    skip_missing: bool = False
    """Export the frames that have a selected image, leaving out those that have none
    (otherwise they are a user error)."""

    def digest(self) -> str:
        """What the request asks, as a digest: the same key with another request conflicts."""
        asked = {
            "video": self.video_id,
            "format": self.format.value,
            "options": self.options.as_record(),
            "skipMissing": self.skip_missing,
        }
        return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


class Exporter:
    """What exporting shares across a whole process: where files are read from and stored,
    where work files go, the job queue and the events. Built once by the app."""

    def __init__(
        self,
        storage: BlobStorage,
        files: FileReleaser,
        temporaries: Temporaries,
        *,
        jobs: JobQueue | None = None,
        events: Events | None = None,
        clock: Callable[[], datetime] = utcnow,
        unfinished_per_user: int = 3,
        idempotency_ttl: timedelta = timedelta(hours=24),
        progress_seconds: float = 0.5,
    ) -> None:
        self.storage = storage
        self.files = files
        self.temporaries = temporaries
        self.jobs = jobs
        """Where accepted exports wait to run; None where nothing runs them (tests run them by
        hand)."""
        self.events = events
        self.clock = clock
        self.unfinished_per_user = unfinished_per_user
        self.idempotency_ttl = idempotency_ttl
        self.progress_seconds = progress_seconds
        """How often a running export writes how far it is (and tells its subscribers)."""

    def announce(self, kind: ExportEventKind, export: Export) -> None:
        """Tell the export's subscribers what changed (the row is written already)."""
        if self.events is not None and export.id is not None:
            self.events.publish(ExportEvent(kind, export.id, export.video_id, export.owner_id))
