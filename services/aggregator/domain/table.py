"""Absolute minute rows kept in memory while they are still likely to change.

Persisted rows are written as absolute values (idempotent upserts: a replay
rewrites the same numbers), so the writer needs the full row, not just the
batch's delta. Keeping 24 hours of rows for 100,000 workers in memory is out of
the question (144 million objects), so only recent minutes stay resident; a
late delta for an older minute is reported by `missing()` so the caller can load
that row from storage first (`load()`), then `apply()` makes it absolute.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from .minutes import MINUTE_MS, MinuteStats, merge_into

__all__ = ["MinuteTable"]

K = TypeVar("K", bound=Hashable)


class MinuteTable(Generic[K]):
    """Resident absolute rows keyed by a tuple whose last item is the minute start (ms)."""

    __slots__ = ("_evicted_floor_ms", "_floor_ms", "_resident_minutes", "_rows")

    def __init__(self, resident_minutes: int = 5, storage_floor_ms: int | None = None) -> None:
        """`storage_floor_ms`: rows of minutes before it may exist in storage (after a
        restart: the minute after the last durable watermark); None for a fresh store."""
        self._rows: dict[K, MinuteStats] = {}
        self._resident_minutes = resident_minutes
        # Minutes before this may have rows that are not resident.
        self._floor_ms: int | None = storage_floor_ms
        self._evicted_floor_ms: int | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: K) -> MinuteStats | None:
        return self._rows.get(key)

    def missing(self, deltas: Iterable[K]) -> list[K]:
        """Keys of deltas for evicted minutes whose base row must be loaded from storage."""
        floor = self._floor_ms
        if floor is None:
            return []
        rows = self._rows
        return [k for k in deltas if k[-1] < floor and k not in rows]  # type: ignore[index]

    def load(self, rows: Mapping[K, MinuteStats]) -> None:
        """Seed base rows read from storage (absolute values), before `apply`."""
        for key, stats in rows.items():
            self._rows.setdefault(key, stats.copy())

    def apply(self, deltas: Mapping[K, MinuteStats]) -> dict[K, MinuteStats]:
        """Merge deltas in; return the changed rows as absolute values (live objects)."""
        rows = self._rows
        changed: dict[K, MinuteStats] = {}
        for key, delta in deltas.items():
            row = rows.get(key)
            if row is None:
                row = rows[key] = delta.copy()
            else:
                merge_into(row, delta)
            changed[key] = row
        return changed

    def evict(self, watermark_ms: int) -> int:
        """Drop rows more than `resident_minutes` older than the watermark's minute.

        Call only after the rows are durable; returns how many were dropped.
        """
        floor = watermark_ms - watermark_ms % MINUTE_MS - self._resident_minutes * MINUTE_MS
        if self._floor_ms is None or floor > self._floor_ms:
            self._floor_ms = floor
        if self._evicted_floor_ms is not None and floor <= self._evicted_floor_ms:
            return 0  # the scan below is O(rows): at most once per minute of watermark
        self._evicted_floor_ms = floor
        rows = self._rows
        old = [k for k in rows if k[-1] < floor]  # type: ignore[index]
        for key in old:
            del rows[key]
        return len(old)
