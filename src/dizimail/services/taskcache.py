"""One asyncio task per key, shared by every caller while its answer lives: DNS answers about a client
(DNSBL listings, reverse DNS) asked by each of its connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TaskCache(Generic[K, V]):
    """``get(key)`` starts ``fetch(key)`` once; callers share the task until ``ttl(value)`` seconds after
    it finished (``error_ttl`` if it raised). At most ``size`` keys: finished, expired ones go first,
    then the oldest."""

    def __init__(self, fetch: Callable[[K], Coroutine[Any, Any, V]], ttl: Callable[[V], float],
                 error_ttl: float = 10.0, size: int = 50_000) -> None:
        self.fetch = fetch
        self.ttl = ttl
        self.error_ttl = error_ttl
        self.size = size
        self._tasks: dict[K, tuple[float, asyncio.Task[V]]] = {}

    def get(self, key: K) -> asyncio.Task[V]:
        now = time.monotonic()
        cached = self._tasks.get(key)
        if cached is not None and (not cached[1].done() or now < cached[0]):
            return cached[1]
        if len(self._tasks) >= self.size:
            self._prune(now)
        task = asyncio.get_running_loop().create_task(self.fetch(key))
        self._tasks[key] = (now + self.error_ttl, task)
        task.add_done_callback(lambda t: self._settle(key, t))
        return task

    async def value(self, key: K) -> V:
        """The answer (a caller that gives up does not cancel it for the others)."""
        return await asyncio.shield(self.get(key))

    def _settle(self, key: K, task: asyncio.Task[V]) -> None:
        entry = self._tasks.get(key)
        if entry is not None and entry[1] is task and not task.cancelled() and task.exception() is None:
            self._tasks[key] = (time.monotonic() + self.ttl(task.result()), task)

    def _prune(self, now: float) -> None:
        for key in [k for k, (expires, task) in self._tasks.items() if task.done() and expires <= now]:
            del self._tasks[key]
        while len(self._tasks) >= self.size:
            del self._tasks[next(iter(self._tasks))]

    def __len__(self) -> int:
        return len(self._tasks)
