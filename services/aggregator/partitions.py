"""Which input partitions this member holds a model for, and how it takes one over.

One model per partition NUMBER: with the range assignor and co-partitioned
topics (same partition count, key = miner), partition p of `pool.shares`,
`pool.blocks` and `pool.miners` belong to the same member, so a miner's whole
state lives with its partitions and replays are deterministic.

Life of a partition in this member (all under the pipeline's lock, so never
in the middle of a batch):
- assigned -> pending: its topic-partitions are paused until taken over;
- take-over: read the stored offsets (creating rows at the broker's oldest
  offset when none), then either keep the model parked at the last revocation
  if nobody moved the offsets since (it is exactly what they describe), or
  rebuild one from PostgreSQL (rows, blocks, liveness, dedup journals); seek
  every topic-partition to its stored offset and resume it;
- revoked -> parked (kept until the next assignment says whether it returns);
- dropped (its batch failed to commit, or another member had moved its
  offsets on): the model is thrown away and the partition is pending again,
  so memory never holds a batch that the database does not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import TopicPartition

from shared.kafka.consumer import BatchConsumer, ConsumeError

from .adapters.offsets import StoredPosition
from .adapters.restore import load_restore
from .adapters.store import AggregatorStore
from .config import AggregatorSettings
from .domain.model import PoolAggregate
from .errors import AggregatorError
from .results import PipelineStats
from .takeover import rebuild_model

__all__ = ["PartitionState", "Partitions"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PartitionState:
    number: int
    model: PoolAggregate
    next_offsets: dict[str, int]  # full topic name -> stored next offset


class Partitions:
    def __init__(
        self,
        settings: AggregatorSettings,
        consumer: BatchConsumer,
        store: AggregatorStore,
        stats: PipelineStats,
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._store = store
        self._stats = stats
        self.owned: dict[int, PartitionState] = {}
        self.pending: set[int] = set()
        self._parked: dict[int, PartitionState] = {}
        self._assigned: dict[int, list[TopicPartition]] = {}
        # Changes since the outputs last heard of them (see take_changes).
        self._taken: set[int] = set()
        self._gone: set[int] = set()

    # --- rebalance callbacks (the pipeline holds its lock) ------------------------------

    def revoked(self, tps: Iterable[TopicPartition]) -> None:
        for p in sorted({tp.partition for tp in tps}):
            state = self.owned.pop(p, None)
            if state is not None:
                self._parked[p] = state
            self.pending.discard(p)
            self._assigned.pop(p, None)
            self._gone.add(p)
            self._taken.discard(p)

    def assigned(self, tps: Iterable[TopicPartition]) -> None:
        by_number: dict[int, list[TopicPartition]] = {}
        for tp in tps:
            by_number.setdefault(tp.partition, []).append(tp)
        for p in [p for p in self.owned if p not in by_number]:  # not revoked first: drop
            self.owned.pop(p)
            self._gone.add(p)
        for p, group in sorted(by_number.items()):
            self._assigned[p] = sorted(group)
            if p not in self.owned:
                self.pending.add(p)
                self._consumer.pause(group)
        for p in [p for p in self._parked if p not in by_number]:
            del self._parked[p]

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the models (their last batch did not commit); take them over again."""
        for p in partitions:
            if self.owned.pop(p, None) is None:
                continue
            self._parked.pop(p, None)
            self.pending.add(p)
            self._gone.add(p)
            self._taken.discard(p)
            self._consumer.pause(self._assigned.get(p, []))

    def take_changes(self) -> tuple[set[int], set[int]]:
        """(partitions taken over, partitions gone) since the last call."""
        taken, gone = self._taken, self._gone - set(self.owned)
        self._taken, self._gone = set(), set()
        return taken, gone

    # --- take-over ---------------------------------------------------------------------

    async def take_over_pending(self) -> bool:
        """Take over every pending partition; False if one failed retriably (retry later)."""
        for p in sorted(self.pending):
            try:
                await self._take_over(p)
            except AggregatorError as exc:
                if not exc.retriable:
                    raise
                log.warning("taking over partition %d failed, will retry: %s", p, exc)
                return False
        return True

    async def _take_over(self, p: int) -> None:
        tps = self._assigned.get(p, [])
        if not tps:
            self.pending.discard(p)
            return
        starts = await self._beginning_offsets(tps, p)
        stored = await self._store.ensure_offsets(
            {(tp.topic, p): starts[tp] for tp in tps}, (p,)
        )
        next_offsets = {tp.topic: stored[(tp.topic, p)].next_offset for tp in tps}
        parked = self._parked.pop(p, None)
        if parked is not None and parked.next_offsets == next_offsets:
            state = parked  # nobody processed it meanwhile: the model is exactly current
            self._stats.reuses += 1
        else:
            state = await self._rebuild(p, tps, stored, next_offsets)
            self._stats.takeovers += 1
        for tp in tps:
            self._consumer.seek(tp, next_offsets[tp.topic])
        self._consumer.resume(tps)
        self.owned[p] = state
        self.pending.discard(p)
        self._taken.add(p)
        self._gone.discard(p)

    async def _beginning_offsets(self, tps: list[TopicPartition], p: int) -> dict[TopicPartition, int]:
        try:
            return await self._consumer.beginning_offsets(tps)
        except ConsumeError as exc:
            raise AggregatorError(f"partition {p}: {exc}", retriable=exc.retriable, cause=exc) from exc

    async def _rebuild(
        self,
        p: int,
        tps: list[TopicPartition],
        stored: dict[tuple[str, int], StoredPosition],
        next_offsets: dict[str, int],
    ) -> PartitionState:
        settings = self._settings
        watermark = max((s.watermark_ms or 0) for s in stored.values())
        started = time.perf_counter()
        data = await load_restore(
            self._store.pool, p, watermark_ms=watermark,
            history_minutes=settings.aggregator_restore_windows_minutes,
            max_blocks=settings.aggregator_restore_blocks, timeout_s=settings.aggregator_db_timeout_s,
        )
        journals = await self._store.load_id_journals(p)
        model = rebuild_model(settings, data, watermark, journals)
        replayed = sum(len(j) for in_order in journals.values() for j in in_order)
        self._stats.replayed += replayed
        log.info(
            "partition %d rebuilt in %.2fs: %d workers, %d minute rows, %d blocks, %d event ids replayed",
            p, time.perf_counter() - started, len(data.workers), len(data.minutes), len(data.blocks), replayed,
        )
        return PartitionState(p, model, next_offsets)
