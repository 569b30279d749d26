"""The DataLoader every relation of a request reads through."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from strawberry.dataloader import AbstractCache, DataLoader, LoaderTask, get_current_batch

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Loader(DataLoader[K, V]):
    """Strawberry's DataLoader, cheaper per key: its futures are kept in a plain dict that `load`
    reads itself, and no callback is hung on each. Strawberry's batch hangs one on every
    future, so that a read whose callers have all been cancelled is cancelled too; the event
    loop then ran one callback per key loaded (about 800 for a storyboard). Here a request's
    end does that at once for all its loaders (`cancel`, through `Loaders.close`), whether it
    was answered or cancelled (a time limit, a client gone)."""

    def __init__(self, load_fn: Callable[[list[K]], Awaitable[Sequence[V | BaseException]]]):
        self._futures: dict[K, asyncio.Future[V]] = {}
        super().__init__(load_fn, cache_map=_Futures(self._futures))

    def load(self, key: K) -> Awaitable[V]:
        future = self._futures.get(key)
        if future is not None and not future.cancelled():
            return future
        future = self.loop.create_future()
        self._futures[key] = future
        get_current_batch(self).tasks.append(LoaderTask(key, future))
        return future

    def cancel(self) -> None:
        """Stop the reads under way and those not started: their keys' futures are cancelled
        (a batch whose futures all are does not read) and a batch reading is cancelled."""
        for future in self._futures.values():
            future.cancel()  # a future already done stays as it is
        batch = self.batch
        reading = batch._dispatch_task if batch is not None else None
        if reading is not None:
            reading.cancel()


class _Futures(AbstractCache[K, V]):
    """A loader's futures by key, in the dict its `load` reads."""

    def __init__(self, futures: dict[K, asyncio.Future[V]]) -> None:
        self._futures = futures

    def get(self, key: K) -> asyncio.Future[V] | None:
        return self._futures.get(key)

    def set(self, key: K, value: asyncio.Future[V]) -> None:
        self._futures[key] = value

    def delete(self, key: K) -> None:
        del self._futures[key]

    def clear(self) -> None:
        self._futures.clear()
