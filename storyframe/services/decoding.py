"""How much memory decoding images may take: a process-wide number of decodes at once, and the
memory a large decode freed handed back to the operating system."""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import functools
import sys
from collections.abc import Callable
from typing import Any, Final, ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")

TRIM_AFTER_PIXELS: Final = 16_000_000
"""After an image of at least this many pixels (64 MB decoded, at Pillow's 4 bytes a pixel),
the memory freed is handed back: see `after_decoding`."""


class DecodeSlots:
    """How many images the process decodes at once; other decodes wait for a free slot.

    Decoding holds the whole image in memory, about 4 bytes a pixel (200 MB for a PNG of 50
    megapixels, however few bytes its file has), so the slots bound the memory decoding takes.
    A decode holds its slot for as long as its worker thread runs: a request cancelled while its
    image is being decoded does not free the slot before the thread is done with the pixels.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("DecodeSlots needs at least one slot")
        self.size = size
        self._free = asyncio.Semaphore(size)
        self._busy = 0
        self._waiting = 0
        self._most = 0

    @property
    def busy(self) -> int:
        """Slots held now."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Decodes waiting for a slot now."""
        return self._waiting

    @property
    def most_busy(self) -> int:
        """The most slots ever held at once."""
        return self._most

    async def run(self, work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """`work(*args, **kwargs)` in a worker thread, once a slot is free."""
        self._waiting += 1
        try:
            await self._free.acquire()
        finally:
            self._waiting -= 1
        try:
            call = functools.partial(contextvars.copy_context().run, work, *args, **kwargs)
            running = asyncio.get_running_loop().run_in_executor(None, call)
        except BaseException:
            self._free.release()
            raise
        self._busy += 1
        self._most = max(self._most, self._busy)
        running.add_done_callback(self._done)
        # Shielded: cancelling the caller leaves the thread (and its slot) to finish.
        return await asyncio.shield(running)

    def _done(self, running: asyncio.Future[Any]) -> None:
        self._busy -= 1
        self._free.release()
        if not running.cancelled():
            running.exception()  # retrieved: a caller cancelled meanwhile never will


def after_decoding(pixels: int) -> None:
    """Hand the memory freed by a large decode back to the operating system.

    Pillow allocates a large image in blocks of 16 MB. Once glibc has freed one such block, it
    raises its threshold for mapping allocations of their own, so the next images' blocks come
    from its heaps (one per worker thread), which keep freed memory for the process: after a few
    large images decoded at once, the server stays hundreds of MB larger. `malloc_trim` returns
    the free pages of every heap.
    """
    trim = malloc_trim()
    if pixels >= TRIM_AFTER_PIXELS and trim is not None:
        trim(0)


@functools.cache
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        process = ctypes.CDLL(None)  # the symbols already loaded, the C library's among them
        trim = process.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim_heap: Callable[[int], int] = trim
    return trim_heap
