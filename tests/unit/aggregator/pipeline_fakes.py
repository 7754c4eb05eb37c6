"""Hand-written fakes of the batch path's ports (consume/ports.py): they keep what they
are told and record every call, so the tests read as what the pipeline did.

`FakeConsumer` behaves like a Kafka partition log: records appended per
topic-partition, fetched from a position that `seek` moves, none from a paused
partition. `FakeStore` keeps offsets and figures as the real store does: a
write commits every partition whose claims still hold, or nothing at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from services.aggregator.consume.ports import StoredPartition, StoredPosition, WriteOutcome
from services.aggregator.consume.results import BatchResult
from services.aggregator.consume.writes import PartitionWrite
from services.aggregator.errors import StoreError
from shared.kafka.consumer import ConsumeError, Rebalance, Record, TopicPartition
from shared.kafka.deadletter import DeadLetter
from shared.kafka.producer import ProduceError

from .pipeline_samples import record

TOPICS = ("pool.shares", "pool.blocks", "pool.miners")


def tps_of(*partitions: int) -> set[TopicPartition]:
    return {TopicPartition(t, p) for t in TOPICS for p in partitions}


class FakeConsumer:
    def __init__(self, partitions: Iterable[int] = (0,), *, max_records: int = 1_000) -> None:
        self.assignment = tps_of(*partitions)
        self.logs: dict[TopicPartition, list[Record]] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()
        self.committed: dict[TopicPartition, int] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.beginning: dict[TopicPartition, int] = {}
        self.beginning_failures: list[ConsumeError] = []
        self.max_records = max_records
        self.rebalance: Rebalance | None = None

    def append(self, value: bytes | dict[str, Any], *, topic: str = "pool.shares", partition: int = 0) -> int:
        log = self.logs.setdefault(TopicPartition(topic, partition), [])
        offset = len(log)
        log.append(record(value, topic=topic, partition=partition, offset=offset))
        return offset

    async def start(self, rebalance: Rebalance | None = None) -> None:
        self.calls.append(("start",))
        self.rebalance = rebalance
        if rebalance is not None:
            await rebalance.on_partitions_assigned(set(self.assignment))

    async def stop(self) -> None:
        self.calls.append(("stop",))

    async def reassign(self, *partitions: int) -> None:
        """An eager rebalance: everything revoked, then the new assignment."""
        assert self.rebalance is not None
        await self.rebalance.on_partitions_revoked(set(self.assignment))
        self.assignment = tps_of(*partitions)
        await self.rebalance.on_partitions_assigned(set(self.assignment))

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        tps = sorted(tps)
        self.calls.append(("pause", tps))
        self.paused.update(tps)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        tps = sorted(tps)
        self.calls.append(("resume", tps))
        self.paused.difference_update(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.calls.append(("seek", tp, offset))
        self.positions[tp] = offset

    async def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        if self.beginning_failures:
            raise self.beginning_failures.pop(0)
        return {tp: self.beginning.get(tp, 0) for tp in tps}

    async def poll_partitions(self) -> dict[TopicPartition, list[Record]]:
        await asyncio.sleep(0.001)  # a poll with nothing to fetch still yields, like the real one
        out: dict[TopicPartition, list[Record]] = {}
        budget = self.max_records
        for tp in sorted(self.assignment - self.paused):
            position = self.positions.get(tp, 0)
            fetched = self.logs.get(tp, [])[position:position + budget]
            if fetched:
                out[tp] = fetched
                self.positions[tp] = fetched[-1].offset + 1
                budget -= len(fetched)
        return out

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.logs.get(tp, [])) if tp in self.assignment else None

    async def commit_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.committed.update(offsets)


class FakeStore:
    def __init__(self) -> None:
        self.positions: dict[tuple[str, int], StoredPosition] = {}
        self.accepted: dict[tuple[str, str, str], int] = {}  # worker -> accepted shares written
        self.journals: dict[int, dict[str, list[Any]]] = {}
        self.writes: list[list[int]] = []  # partitions of each committed write
        self.loads: list[int] = []
        self.failures: list[StoreError] = []  # raised by the next writes, in order
        self.held: asyncio.Event | None = None  # while set and not yet fired, writes wait (a stalled database)

    def move(self, topic: str, partition: int, next_offset: int) -> None:
        """Another member wrote for the partition."""
        self.positions[(topic, partition)] = StoredPosition(next_offset, None, None)

    async def write(self, writes: Sequence[PartitionWrite]) -> WriteOutcome:
        if self.held is not None:
            await self.held.wait()
        if self.failures:
            raise self.failures.pop(0)
        stale = sorted(w.partition for w in writes
                       if any(self.positions[key].next_offset != offset for key, offset in w.claims.items()))
        committed = [w for w in writes if w.partition not in stale]
        for w in committed:
            for (pool, miner, worker, _minute), stats in w.worker_deltas.items():
                key = (pool, miner, worker)
                self.accepted[key] = self.accepted.get(key, 0) + stats.accepted
            for move in w.offsets:
                self.positions[(move.topic, w.partition)] = StoredPosition(
                    move.next_offset, move.last_record_ts_ms, w.watermark_ms)
            for kind, journal in w.id_journals.items():
                self.journals.setdefault(w.partition, {}).setdefault(kind, []).append(journal)
        self.writes.append(sorted(w.partition for w in committed))
        return WriteOutcome(committed=sorted(w.partition for w in committed), stale=stale,
                            rows={"miner_metrics": sum(len(w.worker_deltas) for w in committed)})

    async def ensure_offsets(
        self, starts: Mapping[tuple[str, int], int], partitions: tuple[int, ...] = ()
    ) -> dict[tuple[str, int], StoredPosition]:
        for key, start in starts.items():
            self.positions.setdefault(key, StoredPosition(start, None, None))
        return {key: self.positions[key] for key in starts}

    async def load_partition(self, partition: int, watermark_ms: int) -> StoredPartition:
        self.loads.append(partition)
        return StoredPartition(journals={k: list(v) for k, v in self.journals.get(partition, {}).items()})


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []
        self.failures: list[ProduceError] = []

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.extend(letters)


class FakeEffort:
    def __init__(self) -> None:
        self.pokes: list[int] = []

    def poke(self, found_ms: int) -> None:
        self.pokes.append(found_ms)


class RecordingOutput:
    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.batches: list[BatchResult] = []
        self.fail = fail

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")

    def on_batch(self, result: BatchResult) -> None:
        self.calls.append("on_batch")
        self.batches.append(result)
        if self.fail:
            raise RuntimeError("an output's bug")
