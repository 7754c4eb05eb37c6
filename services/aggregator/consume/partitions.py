"""Which input partitions this member holds a model for, and how it takes one over.

One model per partition NUMBER: with the range assignor and co-partitioned
topics (same partition count, key = miner), partition p of `pool.shares`,
`pool.blocks` and `pool.miners` belong to the same member, so a miner's whole
state lives with its partitions and replays are deterministic.

Each partition this member knows has one `PartitionStatus` (all changes under
the pipeline's lock, so never in the middle of a batch):

    assigned --> PENDING --take-over--> OWNED --revoked--> PARKED
                    ^                     |                  |
                    +------dropped--------+                  |
                    +---------assigned again-----------------+

- PENDING: its topic-partitions are paused until taken over. The take-over
  reads the stored offsets (creating rows at the broker's oldest offset when
  none), then keeps the parked model if nobody moved the offsets since it was
  parked (it is exactly what they describe), or rebuilds one from PostgreSQL
  (rows, blocks, liveness, dedup journals); seeks every topic-partition to its
  stored offset and resumes it.
- OWNED: fetched and folded; its model runs at most one batch ahead of the
  database.
- PARKED: revoked; the model is kept until the next assignment says whether
  the partition returns (then PENDING with that model) or not (forgotten).
- dropped (its batch failed to commit, or another member had moved its
  offsets on): the model is thrown away and the partition is PENDING again,
  so memory never holds a batch that the database does not.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.kafka.consumer import ConsumeError, TopicPartition
from shared.kafka.topics import Topic, topic_name

from ..config import AggregatorSettings
from ..domain.model import PoolAggregate
from ..errors import AggregatorError
from .ports import BatchStore, PartitionControl
from .results import PipelineStats
from .takeover import rebuild_model

__all__ = ["Partition", "PartitionStatus", "Partitions"]

log = logging.getLogger(__name__)


class PartitionStatus(enum.Enum):
    PENDING = "pending"
    OWNED = "owned"
    PARKED = "parked"


@dataclass(slots=True)
class Partition:
    number: int
    status: PartitionStatus
    topic_partitions: list[TopicPartition] = field(default_factory=list)  # as assigned
    # OWNED: the live model. PENDING or PARKED: the model kept from the last revocation
    # (None when there is none, or it was dropped).
    model: PoolAggregate | None = None
    next_offsets: dict[str, int] = field(default_factory=dict)  # full topic name -> stored next offset


class Partitions:
    def __init__(
        self,
        settings: AggregatorSettings,
        consumer: PartitionControl,
        store: BatchStore,
        stats: PipelineStats,
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._store = store
        self._stats = stats
        self._states: dict[int, Partition] = {}
        # Changes since the outputs last heard of them (see take_changes).
        self._taken: set[int] = set()
        self._gone: set[int] = set()

    # --- reading -------------------------------------------------------------------------

    def status(self, number: int) -> PartitionStatus | None:
        state = self._states.get(number)
        return state.status if state is not None else None

    @property
    def owned(self) -> dict[int, Partition]:
        return {p: s for p, s in self._states.items() if s.status is PartitionStatus.OWNED}

    @property
    def pending(self) -> set[int]:
        return {p for p, s in self._states.items() if s.status is PartitionStatus.PENDING}

    def model(self, number: int) -> PoolAggregate | None:
        """The live model of an owned partition."""
        state = self._states.get(number)
        return state.model if state is not None and state.status is PartitionStatus.OWNED else None

    # --- rebalance callbacks (the pipeline holds its lock) ------------------------------

    def revoked(self, tps: Iterable[TopicPartition]) -> None:
        for p in sorted({tp.partition for tp in tps}):
            state = self._states.get(p)
            if state is None:
                continue
            if state.model is None:
                del self._states[p]
            else:
                state.status = PartitionStatus.PARKED
                state.topic_partitions = []
            self._gone.add(p)
            self._taken.discard(p)

    def assigned(self, tps: Iterable[TopicPartition]) -> None:
        by_number: dict[int, list[TopicPartition]] = {}
        for tp in tps:
            by_number.setdefault(tp.partition, []).append(tp)
        for p, state in list(self._states.items()):
            if p in by_number:
                continue
            if state.status is PartitionStatus.OWNED:  # not revoked first: gone all the same
                self._gone.add(p)
            del self._states[p]
        for p, group in sorted(by_number.items()):
            state = self._states.setdefault(p, Partition(p, PartitionStatus.PENDING))
            state.topic_partitions = sorted(group)
            if state.status is not PartitionStatus.OWNED:
                state.status = PartitionStatus.PENDING
                self._consumer.pause(state.topic_partitions)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the models (their last batch did not commit); take them over again."""
        for p in partitions:
            state = self._states.get(p)
            if state is None or state.status is not PartitionStatus.OWNED:
                continue
            state.status = PartitionStatus.PENDING
            state.model = None
            state.next_offsets = {}
            self._gone.add(p)
            self._taken.discard(p)
            self._consumer.pause(state.topic_partitions)

    def take_changes(self) -> tuple[set[int], set[int]]:
        """(partitions taken over, partitions gone) since the last call."""
        owned = self.owned
        taken, gone = self._taken, self._gone - set(owned)
        self._taken, self._gone = set(), set()
        return taken, gone

    # --- take-over ---------------------------------------------------------------------

    async def take_over_pending(self) -> bool:
        """Take over every pending partition; False if one failed retriably (retry later)."""
        for p in sorted(self.pending):
            try:
                await self._take_over(self._states[p])
            except AggregatorError as exc:
                if not exc.retriable:
                    raise
                log.warning("taking over partition %d failed, will retry: %s", p, exc)
                return False
        return True

    async def _take_over(self, state: Partition) -> None:
        p, tps = state.number, state.topic_partitions
        if not tps:
            del self._states[p]
            return
        starts = await self._beginning_offsets(tps, p)
        stored = await self._store.ensure_offsets({(tp.topic, p): starts[tp] for tp in tps}, (p,))
        next_offsets = {tp.topic: stored[(tp.topic, p)].next_offset for tp in tps}
        if state.model is not None and state.next_offsets == next_offsets:
            self._stats.reuses += 1  # nobody processed it meanwhile: the model is exactly current
        else:
            watermark = max((s.watermark_ms or 0) for s in stored.values())
            state.model = await self._rebuild(p, watermark)
            shares = stored.get((topic_name(self._settings, Topic.SHARES), p))
            state.model.share_arrival_ms = shares.last_record_ts_ms if shares is not None else None
            state.next_offsets = next_offsets
            self._stats.takeovers += 1
        for tp in tps:
            self._consumer.seek(tp, next_offsets[tp.topic])
        self._consumer.resume(tps)
        state.status = PartitionStatus.OWNED
        self._taken.add(p)
        self._gone.discard(p)

    async def _beginning_offsets(self, tps: list[TopicPartition], p: int) -> dict[TopicPartition, int]:
        try:
            return await self._consumer.beginning_offsets(tps)
        except ConsumeError as exc:
            raise AggregatorError(f"partition {p}: {exc}", retriable=exc.retriable, cause=exc) from exc

    async def _rebuild(self, p: int, watermark_ms: int) -> PoolAggregate:
        started = time.perf_counter()
        data = await self._store.load_partition(p, watermark_ms)
        model = rebuild_model(self._settings, data, watermark_ms)
        replayed = sum(len(j) for in_order in data.journals.values() for j in in_order)
        self._stats.replayed += replayed
        log.info(
            "partition %d rebuilt in %.2fs: %d workers, %d minute rows, %d blocks, %d event ids replayed",
            p, time.perf_counter() - started, len(data.workers), len(data.minutes), len(data.blocks), replayed,
        )
        return model
