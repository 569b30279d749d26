"""Files the server makes for a moment and deletes itself: an image being checked before it is
stored, the parts of an upload. They live in one folder of the data directory (never the
system's), so what a process killed in the middle of its work leaves behind can be found and
removed by `storyframe gc`."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger("storyframe.files")

STALE_AFTER_SECONDS = 3600.0
"""The age past which `storyframe gc` takes a temporary file for a leftover: a file being
written is touched every moment, and none is kept for more than a request."""

GENERATED_PREFIX = "storyframe-generated-"
UPLOAD_PREFIX = "storyframe-upload-"


class Temporaries:
    """The folder of the process's temporary files, and what else holds some (the local
    storage's partial writes, which must be renamed within their own folder)."""

    def __init__(self, root: Path, *elsewhere: Callable[[], Iterable[Path]]) -> None:
        self.root = root
        self._elsewhere = elsewhere

    def write(self, data: bytes, prefix: str) -> Path:
        """A new file holding `data`; the caller deletes it."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=prefix, dir=self.root)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def folder(self, prefix: str) -> tempfile.TemporaryDirectory[str]:
        """A new folder, removed with what it holds when the `with` block ends."""
        self.root.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=prefix, dir=self.root)

    def existing(self) -> list[Path]:
        """Every temporary file or folder that exists now, fresh or left behind."""
        found = sorted(self.root.iterdir()) if self.root.is_dir() else []
        for source in self._elsewhere:
            found.extend(source())
        return found

    def stale(self, older_than: float, now: float | None = None) -> list[Path]:
        """The temporaries nothing has touched for `older_than` seconds: left by a process
        that stopped in the middle of its work (a crash, a kill)."""
        now = time.time() if now is None else now
        return [path for path in self.existing() if _last_touched(path) <= now - older_than]

    def remove(self, paths: Iterable[Path]) -> int:
        """Delete these files and folders; how many went."""
        removed = 0
        for path in paths:
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue  # gone since it was found
            except OSError:
                log.exception("could not remove a temporary file", extra={"path": str(path)})
                continue
            removed += 1
        return removed


def _last_touched(path: Path) -> float:
    """When the file, or anything in the folder, last changed; a file that vanished while
    looked at counts as fresh (so it is left alone)."""
    try:
        newest = path.lstat().st_mtime
        if path.is_dir() and not path.is_symlink():
            for inner in path.rglob("*"):
                newest = max(newest, inner.lstat().st_mtime)
    except FileNotFoundError:
        return float("inf")
    return newest
