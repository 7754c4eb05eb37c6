"""Deadlines of workers published or queued as online (pure).

A worker that stops hashing sends nothing more, so nothing in the event stream
says "publish me again". After publishing a worker as online, the snapshot
stream watches the time the worker would be declared offline
(`Liveness.offline_deadline_ms`); when that time has passed, the worker is
re-examined (and published if it did go offline, or watched again with its
new deadline if shares kept it online).

A heap with lazy deletion: re-watching a key leaves its old entry in the heap,
skipped when popped; the heap is rebuilt once stale entries outnumber live ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["DeadlineWatch"]

K = TypeVar("K", bound=Hashable)


class DeadlineWatch(Generic[K]):
    __slots__ = ("_deadlines", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[int, K]] = []
        self._deadlines: dict[K, int] = {}

    def __len__(self) -> int:
        return len(self._deadlines)

    def watch(self, key: K, deadline_ms: int) -> None:
        """(Re)set the key's deadline."""
        if self._deadlines.get(key) == deadline_ms:
            return
        self._deadlines[key] = deadline_ms
        heapq.heappush(self._heap, (deadline_ms, key))
        if len(self._heap) > 2 * len(self._deadlines) + 64:
            self._heap = [(d, k) for k, d in self._deadlines.items()]
            heapq.heapify(self._heap)

    def forget(self, key: K) -> None:
        self._deadlines.pop(key, None)

    def due(self, now_ms: int) -> list[K]:
        """Keys whose deadline is at or before `now_ms`, removed from the watch."""
        heap, deadlines = self._heap, self._deadlines
        out: list[K] = []
        while heap and heap[0][0] <= now_ms:
            deadline, key = heapq.heappop(heap)
            if deadlines.get(key) == deadline:
                del deadlines[key]
                out.append(key)
        return out
