"""The reference the service's array-backed ActivityLedger is checked against: the per-key
ledger it replaced, one MinuteMask per worker and per miner, each group applied in order
(MinuteMask.add), so every result follows from the definition one share-minute at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from services.aggregator.domain.activity import ACTIVE_SPAN_MINUTES, MinuteMask
from services.aggregator.domain.minutes import MINUTE_MS, WorkerKey

__all__ = ["ReferenceActivityLedger"]


class ReferenceActivityLedger:
    """The per-key ledger the service had before its masks went into arrays: the oracle.

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

    def worker_masks(self, keys: Iterable[WorkerKey]) -> list[MinuteMask | None]:
        return [self._workers.get(key) for key in keys]

    def miner_mask(self, key: tuple[str, str]) -> MinuteMask | None:
        return self._miners.get(key)

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
