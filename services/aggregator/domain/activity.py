"""Active miners and workers per minute, counted exactly once from the share stream.

Definition (docs/aggregator.md, "Active miners and workers"): a worker is
*active in minute M* when it submitted at least one share (any status: a worker
sending only rejects is working, badly) with event time in the ten minutes
M-9 .. M; a miner is active in M when one of its workers is. `pool_metrics`
holds, per pool and minute, how many workers and miners were active in it.

How the counts stay exact with late and reordered shares: every share-minute a
worker gains (a minute it had no share in before) makes active exactly the
minutes of M .. M+9 that no earlier share-minute of that worker covered; each
such minute adds one to its pool minute's `active_workers`. The covered set
only grows, so the sum of these increments is the size of the final set
whatever the order the share-minutes came in: the same stream gives the same
rows, in any batch split, across restarts. Miners likewise, over the union of
their workers' share-minutes. A pool minute row may so exist up to nine
minutes after the newest share, carrying only activity.

State: per worker and per miner, the share-minutes of the last
`horizon_minutes` before its newest one, as the bits of one int (bit i =
minute `base + i`). The horizon covers the lateness limit plus the span: a
share that is not too late is at most `max_lateness` older than the watermark,
so it never needs a bit older than that. Nothing here does I/O; the worker
masks are persisted beside each worker's liveness row (`as_row`/`restore`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from .minutes import MINUTE_MS, WorkerKey

__all__ = [
    "ACTIVE_SPAN_MINUTES",
    "ActivityLedger",
    "MinuteMask",
    "newly_active_range",
]

ACTIVE_SPAN_MINUTES: Final = 10
_WINDOW_BITS: Final = 2 * ACTIVE_SPAN_MINUTES - 1  # minutes t-9 .. t+9 around a new share-minute
_BEFORE_BITS: Final = (1 << (ACTIVE_SPAN_MINUTES - 1)) - 1  # minutes t-9 .. t-1 of that window


def newly_active_range(around: int) -> range:
    """Offsets k (0..9) of the minutes t+k a new share-minute t makes active: always one run.

    `around` holds the share-minutes t-9 .. t+9 known BEFORE t (bit j = minute
    t-9+j; bit 9, t itself, is clear). Minute t+k was active already when a
    share-minute lies in t+k-9 .. t+k, i.e. among bits k .. k+9. The nearest earlier
    share-minute t-9+p covers the minutes up to t+p and the nearest later one t+1+q
    those from t+1+q on, so what is new is exactly p+1 .. q (a run, maybe empty).
    """
    lo = (around & _BEFORE_BITS).bit_length()  # p + 1, or 0 when nothing is before t
    after = around >> ACTIVE_SPAN_MINUTES
    hi = (after & -after).bit_length() if after else ACTIVE_SPAN_MINUTES  # q + 1, or the whole span
    return range(lo, hi)


@dataclass(slots=True)
class MinuteMask:
    """Share-minutes of one worker or miner: bit i = minute `base + i` (minute numbers, not ms)."""

    base: int
    bits: int = 0

    @property
    def head(self) -> int:
        """The newest share-minute (base - 1 when empty)."""
        return self.base + self.bits.bit_length() - 1

    def window(self, first: int, width: int) -> int:
        """Bits of minutes first .. first+width-1 (bit 0 = `first`)."""
        shift = first - self.base
        bits = self.bits >> shift if shift >= 0 else self.bits << -shift
        return bits & ((1 << width) - 1)

    def add(self, minute: int, horizon_minutes: int) -> range:
        """Mark `minute`; the minutes it newly makes active, one run (empty if it was marked)."""
        if self.bits and minute < self.head - horizon_minutes:
            return _NOTHING  # beyond the horizon: a share that is not too late never lands here
        if minute < self.base:
            self.bits <<= self.base - minute
            self.base = minute
        offset = minute - self.base
        if (self.bits >> offset) & 1:
            return _NOTHING
        around = self.window(minute - ACTIVE_SPAN_MINUTES + 1, _WINDOW_BITS)
        self.bits |= 1 << offset
        self._trim(horizon_minutes)
        new = newly_active_range(around)
        return range(minute + new.start, minute + new.stop)

    def _trim(self, horizon_minutes: int) -> None:
        oldest = self.head - horizon_minutes
        if oldest > self.base:
            self.bits >>= oldest - self.base
            self.base = oldest

    def union(self, other: MinuteMask, horizon_minutes: int) -> None:
        """Add every share-minute of `other` (no activity counted: restoring, not ingesting)."""
        if not other.bits:
            return
        if other.base < self.base:
            self.bits <<= self.base - other.base
            self.base = other.base
        self.bits |= other.bits << (other.base - self.base)
        self._trim(horizon_minutes)

    def as_row(self) -> tuple[int, bytes]:
        """(base minute as epoch ms, the bits little-endian): what worker_status stores."""
        return self.base * MINUTE_MS, self.bits.to_bytes((self.bits.bit_length() + 7) // 8, "little")

    @classmethod
    def from_row(cls, base_ms: int, data: bytes) -> MinuteMask:
        return cls(base_ms // MINUTE_MS, int.from_bytes(data, "little"))


class ActivityLedger:
    """The share-minutes of every worker and miner of one model, and the activity they add.

    `observe` takes a batch's worker-minutes with shares and returns the increments of
    (active_miners, active_workers) per (pool, minute start ms).
    """

    __slots__ = ("_horizon", "_miners", "_workers")

    def __init__(self, max_lateness_ms: int) -> None:
        # A share up to max_lateness older than the watermark asks about the span before it.
        self._horizon = -(-max_lateness_ms // MINUTE_MS) + ACTIVE_SPAN_MINUTES
        self._workers: dict[WorkerKey, MinuteMask] = {}
        self._miners: dict[tuple[str, str], MinuteMask] = {}

    def __len__(self) -> int:
        return len(self._workers)

    def observe(self, share_minutes: Iterable[tuple[str, str, str, int]]) -> dict[tuple[str, int], list[int]]:
        """Worker-minutes (pool, miner, worker, minute start ms) that carry shares ->
        {(pool, minute ms): [active miners added, active workers added]}."""
        # Each new share-minute adds one run of minutes: kept as the run's two edges, summed
        # into minutes once at the end (a few dict updates per share-minute, not twenty).
        edges: dict[str, dict[int, list[int]]] = {}
        horizon = self._horizon
        for pool, miner, worker, minute_ms in share_minutes:
            minute = minute_ms // MINUTE_MS
            mask = self._workers.get((pool, miner, worker))
            if mask is None:
                mask = self._workers[(pool, miner, worker)] = MinuteMask(minute)
            worker_run = mask.add(minute, horizon)
            owner = self._miners.get((pool, miner))
            if owner is None:
                owner = self._miners[(pool, miner)] = MinuteMask(minute)
            miner_run = owner.add(minute, horizon)
            if worker_run or miner_run:
                by_minute = edges.get(pool)
                if by_minute is None:
                    by_minute = edges[pool] = {}
                if worker_run:
                    _edge(by_minute, worker_run.start, 1, 1)
                    _edge(by_minute, worker_run.stop, 1, -1)
                if miner_run:
                    _edge(by_minute, miner_run.start, 0, 1)
                    _edge(by_minute, miner_run.stop, 0, -1)
        return _minutes_of(edges)

    def worker_mask(self, key: WorkerKey) -> MinuteMask | None:
        return self._workers.get(key)

    def restore(self, masks: Mapping[WorkerKey, MinuteMask]) -> None:
        """Seed from persisted worker masks; a miner's is the union of its workers'."""
        for key, mask in masks.items():
            self._workers[key] = MinuteMask(mask.base, mask.bits)
            owner = self._miners.get(key[:2])  # type: ignore[arg-type]
            if owner is None:
                self._miners[key[:2]] = MinuteMask(mask.base, mask.bits)  # type: ignore[index]
            else:
                owner.union(mask, self._horizon)

    def prune(self, watermark_ms: int) -> int:
        """Forget masks whose newest minute is past the horizon of the watermark: no share
        that is not too late can reach them. Returns how many workers were forgotten."""
        oldest = watermark_ms // MINUTE_MS - self._horizon
        dead = [k for k, m in self._workers.items() if m.head < oldest]
        for key in dead:
            del self._workers[key]
        for key in [k for k, m in self._miners.items() if m.head < oldest]:
            del self._miners[key]
        return len(dead)

    def items(self) -> Iterator[tuple[WorkerKey, MinuteMask]]:
        return iter(self._workers.items())


_NOTHING: Final = range(0)


def _edge(by_minute: dict[int, list[int]], minute: int, field: int, step: int) -> None:
    counts = by_minute.get(minute)
    if counts is None:
        counts = by_minute[minute] = [0, 0]
    counts[field] += step


def _minutes_of(edges: dict[str, dict[int, list[int]]]) -> dict[tuple[str, int], list[int]]:
    """Run edges per pool -> the count added to every minute the runs cover."""
    out: dict[tuple[str, int], list[int]] = {}
    for pool, by_minute in edges.items():
        miners = workers = 0
        marks = sorted(by_minute)
        for at, following in zip(marks, marks[1:] + marks[-1:]):
            step = by_minute[at]
            miners += step[0]
            workers += step[1]
            if miners or workers:
                for minute in range(at, following):
                    out[(pool, minute * MINUTE_MS)] = [miners, workers]
    return out
