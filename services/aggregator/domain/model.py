"""The aggregator's whole pure state: events in, minute deltas and figures out.

Per share batch: dedup (event-time horizon) -> lateness (watermark, event by
event in stream order) -> fold into worker-minute deltas -> roll up to pool
minutes -> windows, liveness and round effort, each once per minute bucket.
The returned deltas are what storage needs; a `MinuteTable` (table.py) turns
them into absolute rows for idempotent upserts.

The share watermark (newest share event time) alone drives lateness: block and
miner events arrive on other topics with their own lag, and letting them move
the watermark would make share classification depend on topic interleaving.
For strict replay determinism keep one model per input partition (a miner's
events all land in one partition) and add pool figures across partitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.events import BlockEvent, MinerEvent

from .accumulator import WindowAccumulator
from .activity import ActivityLedger
from .blocks import BlockLedger, BlockUpdate, fold_round_seconds
from .dedup import EventIds
from .figures import window_figures
from .groups import MinuteGroups
from .lateness import MAX_LATENESS_MS, classify_lateness
from .liveness import Liveness
from .minutes import (
    MinuteStats,
    PoolMinuteKey,
    WorkerKey,
    WorkerMinuteKey,
    fold_shares,
    minute_start,
    roll_up_pools,
)
from .share import Share
from .window_rows import WindowRows
from .windows import DEFAULT_MULTIPLIER

__all__ = ["PRUNE_EVERY_MS", "BlockBatchResult", "PoolAggregate", "ShareBatchResult"]

# How far event time moves between two prunes of idle workers. A prune walks every
# worker (~50 ms at 100,000), and nothing idle for less than a day may go.
PRUNE_EVERY_MS = 3_600_000


@dataclass(slots=True)
class ShareBatchResult:
    received: int = 0
    duplicates: int = 0
    late: int = 0  # counted into an already complete minute
    too_late: int = 0  # older than the lateness limit: dropped
    worker_deltas: dict[WorkerMinuteKey, MinuteStats] = field(default_factory=dict)
    pool_deltas: dict[PoolMinuteKey, MinuteStats] = field(default_factory=dict)
    # (pool, minute) -> [active miners added, active workers added] (activity.py)
    activity: dict[PoolMinuteKey, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class BlockBatchResult:
    duplicates: int = 0
    updates: list[BlockUpdate] = field(default_factory=list)
    worker_deltas: dict[WorkerMinuteKey, MinuteStats] = field(default_factory=dict)
    pool_deltas: dict[PoolMinuteKey, MinuteStats] = field(default_factory=dict)


class PoolAggregate:
    """Everything the aggregator computes, for the events of one or more pools."""

    def __init__(
        self,
        *,
        multiplier: float = DEFAULT_MULTIPLIER,
        dedup: EventIds | None = None,
        liveness: Liveness | None = None,
        ledger: BlockLedger | None = None,
        max_lateness_ms: int = MAX_LATENESS_MS,
        prune_every_ms: int | None = PRUNE_EVERY_MS,
    ) -> None:
        self.multiplier = multiplier
        self.dedup = dedup if dedup is not None else EventIds()
        self.liveness = liveness if liveness is not None else Liveness()
        self.ledger = ledger if ledger is not None else BlockLedger()
        self.workers: WindowRows[WorkerKey] = WindowRows()
        # Pools are a handful of keys with a group or two per batch: per-key Python beats a
        # round of numpy calls there.
        self.pools: WindowAccumulator[str] = WindowAccumulator()
        self.activity = ActivityLedger(max_lateness_ms)
        self.watermark_ms = 0
        # Broker timestamp of the newest share record folded: when the data that set the
        # watermark arrived (None: not known). Liveness after a backfill counts from it.
        self.share_arrival_ms: int | None = None
        self._max_lateness_ms = max_lateness_ms
        self._miner_workers: dict[tuple[str, str], list[str]] = {}
        self._assigned_difficulty: dict[WorkerKey, float] = {}
        self._prune_every_ms = prune_every_ms  # None: keep every worker (tests of a long stream's figures)
        self._pruned_at_ms: int | None = None  # None: no share yet (the hour counts from the first)

    # --- ingestion --------------------------------------------------------------

    def ingest_shares(self, shares: Sequence[Share]) -> ShareBatchResult:
        result = ShareBatchResult(received=len(shares))
        fresh = self.dedup.fresh("share", shares)
        result.duplicates = len(shares) - len(fresh)
        kept: list[Share] = []
        wm = self.watermark_ms
        limit = self._max_lateness_ms
        for share in fresh:
            ts = share.ts_ms
            if ts >= wm:
                wm = ts
            else:
                kind = classify_lateness(ts, wm, limit)
                if kind == "too_late":
                    result.too_late += 1
                    continue
                if kind == "late":
                    result.late += 1
            kept.append(share)
        self.watermark_ms = wm
        self.apply_fold(result, fold_shares(kept), fold_round_seconds(kept))
        return result

    @property
    def max_lateness_ms(self) -> int:
        return self._max_lateness_ms

    def apply_fold(self, result: ShareBatchResult, deltas: dict[WorkerMinuteKey, MinuteStats],
                   round_seconds: dict[tuple[str, int], int], groups: MinuteGroups | None = None) -> None:
        """The per-group half of `ingest_shares`, for shares the caller already deduplicated
        (through `dedup`), judged for lateness (moving `watermark_ms`) and folded per
        worker-minute and per pool-second: the columnar fold (consume/columnar_fold.py), which
        also hands the same groups as columns (`groups`, in the dict's order)."""
        if groups is None:
            groups = MinuteGroups.of_deltas(deltas)
        result.worker_deltas = deltas
        pool_deltas = result.pool_deltas = roll_up_pools(deltas)
        result.activity = self.activity.observe_groups(groups.keys, groups.minute_ms)
        self._apply(groups, pool_deltas)
        self.ledger.add_round_seconds(round_seconds)

    def _prune_as_event_time_passes(self) -> None:
        """Forget the workers idle for over a day, once an hour of event time: without it a
        long-running member keeps every worker it ever saw (memory grows with churn)."""
        if self._prune_every_ms is None:
            return
        if self._pruned_at_ms is None:
            # The first batch's workers all just shared: a prune now walks them for nothing
            # (12 partitions' first prunes were 1.7% of a 25 s live run). 0: no share time yet.
            self._pruned_at_ms = self.watermark_ms or None
        elif self.watermark_ms - self._pruned_at_ms >= self._prune_every_ms:
            self._pruned_at_ms = self.watermark_ms
            self.prune(self.watermark_ms)

    def _apply(self, groups: MinuteGroups, pool_deltas: dict[PoolMinuteKey, MinuteStats]) -> None:
        # The window sums of the whole batch move in one add_groups (window_rows.py), liveness
        # in one call; no per-group Python here but the liveness loop.
        keys = groups.keys
        self.liveness.observe_minutes(keys, groups.minute_ms, groups.submitted, groups.last_share_ms,
                                      groups.accepted, groups.difficulty)
        new = self.workers.add_groups(keys, np.array(groups.minute_ms, dtype=np.int64),
                                      np.array(groups.accepted, dtype=np.float64),
                                      np.array(groups.submitted, dtype=np.float64),
                                      np.array(groups.difficulty, dtype=np.float64))
        for i in np.flatnonzero(new).tolist():
            pool, miner, worker = keys[i]
            self._miner_workers.setdefault((pool, miner), []).append(worker)
        for (pool, minute), stats in pool_deltas.items():
            self.pools.add(pool, minute, stats.accepted, stats.submitted, stats.difficulty_accepted)
        self._prune_as_event_time_passes()

    def ingest_blocks(self, blocks: Sequence[BlockEvent]) -> BlockBatchResult:
        """Block events: statuses by hash, rounds, and blocks_found in minute rows."""
        result = BlockBatchResult()
        fresh = self.dedup.fresh("block", blocks)
        result.duplicates = len(blocks) - len(fresh)
        for event in fresh:
            update = self.ledger.observe(event)
            result.updates.append(update)
            block = update.block
            if update.is_new:
                self._count_block(result, block.pool, block.miner, block.worker, block.found_at_ms, 1)
            elif update.moved_from_ms is not None:
                self._count_block(result, block.pool, block.miner, block.worker, update.moved_from_ms, -1)
                self._count_block(result, block.pool, block.miner, block.worker, block.found_at_ms, 1)
        return result

    @staticmethod
    def _count_block(
        result: BlockBatchResult, pool: str, miner: str, worker: str, ts_ms: int, n: int
    ) -> None:
        minute = minute_start(ts_ms)
        worker_key = (pool, miner, worker, minute)
        row = result.worker_deltas.get(worker_key)
        if row is None:
            row = result.worker_deltas[worker_key] = MinuteStats()
        row.blocks_found += n
        pool_key = (pool, minute)
        total = result.pool_deltas.get(pool_key)
        if total is None:
            total = result.pool_deltas[pool_key] = MinuteStats()
        total.blocks_found += n

    def ingest_miner_events(self, events: Iterable[MinerEvent]) -> int:
        """Connection events; returns how many were fresh."""
        fresh = 0
        for event in events:
            if self.dedup.seen_before("miner", event.event_id, event.ts_ms):
                continue
            fresh += 1
            key = (event.pool, event.miner, event.worker)
            self.liveness.observe_connection(key, event.node, event.state, event.ts_ms)
            if event.difficulty is not None:
                self._assigned_difficulty[key] = event.difficulty
        return fresh

    def restore_minutes(self, rows: dict[WorkerMinuteKey, MinuteStats]) -> None:
        """Seed windows and liveness rates from persisted minute rows (absolute values,
        e.g. after taking over a partition). Neither dedup, lateness nor blocks move:
        the rows are history, not events."""
        self._apply(MinuteGroups.of_deltas(rows), roll_up_pools(rows))

    # --- figures ----------------------------------------------------------------

    def miners(self, pool: str | None = None) -> Iterator[tuple[str, str]]:
        return (k for k in self._miner_workers if pool is None or k[0] == pool)

    def worker_figures(self, key: WorkerKey, as_of_ms: int) -> dict[str, Any]:
        totals = self.workers.totals(key, as_of_ms)
        return window_figures(
            totals,
            multiplier=self.multiplier,
            online=self.liveness.is_online(key, as_of_ms),
            last_share_at_ms=self.liveness.last_share_ms(key),
            share_difficulty=self._assigned_difficulty.get(key),
            extra={"pool": key[0], "miner": key[1], "worker": key[2]},
        )

    def prune(self, as_of_ms: int) -> None:
        """Drop state of keys idle for longer than the 24h window (and liveness retention)."""
        self.workers.prune(as_of_ms)
        self.pools.prune(as_of_ms)
        self.liveness.prune(as_of_ms)
        self.activity.prune(self.watermark_ms)  # by event time: late shares reach back from the watermark
        for (pool, miner), names in list(self._miner_workers.items()):
            names[:] = [w for w in names if (pool, miner, w) in self.workers]
            if not names:
                del self._miner_workers[(pool, miner)]
        # A worker that connected but has not shared yet is known to liveness alone.
        for key in [k for k in self._assigned_difficulty if k not in self.workers and k not in self.liveness]:
            del self._assigned_difficulty[key]
