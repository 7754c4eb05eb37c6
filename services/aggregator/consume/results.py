"""What the pipeline hands its outputs after each durable batch, and its running counts.

`BatchResult` is THE batch contract: built by the pipeline (`batch_result`)
only after the batch's transaction committed, read by every output (snapshot
stream, exporter, roll-ups, plugins):

- `partitions`: partition number -> the live model and what it did this batch
  (a partition just taken over appears with its model only),
- `revoked`: partitions this process no longer owns (their models are gone),
- per BASE topic (`pool.shares`, without the prefix): records received,
  duplicates, dead letters,
- late / too-late shares, batch size, event-time lag samples, flush duration,
  consumer lag per (base topic, partition).

Models are referenced, not copied: outputs read the live `PoolAggregate`
objects between batches, from the same event loop (no locking needed).
Counts cover only the partitions whose transaction committed: the records of
a partition that was dropped will be read, and counted, again.

`PipelineStats` accumulates the same counts, and what no batch carries (a
failed write, a take-over), for telemetry and tests.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from shared.kafka.consumer import Record
from shared.kafka.deadletter import DeadLetter
from shared.kafka.topics import Topic

from ..domain.minutes import WorkerKey
from ..domain.model import BlockBatchResult, PoolAggregate, ShareBatchResult

if TYPE_CHECKING:
    from .fold import Folded

__all__ = ["BatchResult", "Output", "PartitionResult", "PipelineStats", "base_topic", "batch_result"]


class Output(Protocol):
    """What a durable batch feeds. `start`/`stop` are owned by the pipeline (stop is
    idempotent, safe before start); `on_batch` is bookkeeping without I/O (the output
    does its I/O in tasks of its own) and runs after the batch is durable. An output
    that raises is logged and skipped for that batch."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def on_batch(self, result: BatchResult) -> None: ...


@dataclass(slots=True)
class PartitionResult:
    model: PoolAggregate
    shares: ShareBatchResult | None = None
    blocks: BlockBatchResult | None = None
    connections: Collection[WorkerKey] = ()  # workers with fresh connect/disconnect events


@dataclass(slots=True)
class BatchResult:
    partitions: Mapping[int, PartitionResult] = field(default_factory=dict)
    received: Mapping[str, int] = field(default_factory=dict)
    duplicates: Mapping[str, int] = field(default_factory=dict)
    dead_lettered: Mapping[str, int] = field(default_factory=dict)
    late: int = 0
    too_late: int = 0
    batch_size: int = 0
    event_lag_ms: Sequence[int] = ()
    flush_duration_s: float | None = None
    consumer_lag: Mapping[tuple[str, int], int] | None = None
    consumer_lag_at_ms: int | None = None  # wall clock when `consumer_lag` was measured
    revoked: Collection[int] = ()
    # Beyond the outputs' shape: rows written per table, records skipped as already
    # counted (replays after a takeover), partitions found owned by another member.
    rows: Mapping[str, int] = field(default_factory=dict)
    skipped: int = 0
    stale_partitions: Collection[int] = ()

    def changed_workers(self) -> list[tuple[int, WorkerKey]]:
        """(partition, worker) for every worker whose rows or connection changed."""
        out: list[tuple[int, WorkerKey]] = []
        for partition, pr in self.partitions.items():
            seen: set[WorkerKey] = set()
            for result in (pr.shares, pr.blocks):
                if result is not None:
                    seen.update(k[:3] for k in result.worker_deltas)  # type: ignore[misc]
            seen.update(pr.connections)
            out.extend((partition, key) for key in seen)
        return out

    def changed_minutes(self) -> set[int]:
        """Minute starts (ms) whose persisted rows this batch changed."""
        minutes: set[int] = set()
        for pr in self.partitions.values():
            for result in (pr.shares, pr.blocks):
                if result is not None:
                    minutes.update(minute for _pool, minute in result.pool_deltas)
        return minutes


@dataclass(slots=True)
class PipelineStats:
    """Running totals since start (plain ints: read them from any telemetry hook)."""

    batches: int = 0
    records: int = 0
    skipped: int = 0
    received: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    late: int = 0
    too_late: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    flush_s: float = 0.0
    store_failures: int = 0  # batch transactions that failed (their partitions were rebuilt)
    stale_partitions: int = 0  # partitions dropped because another member had moved them on
    takeovers: int = 0  # partition models rebuilt from the database
    reuses: int = 0  # partition models kept across a rebalance (nobody else moved them)
    replayed: int = 0  # journaled event ids replayed into deduplicators at take-overs
    output_failures: int = 0
    last: BatchResult | None = None

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.records += result.batch_size  # (skipped records are counted as they are fetched)
        for mine, theirs in ((self.received, result.received), (self.duplicates, result.duplicates),
                             (self.dead_lettered, result.dead_lettered), (self.rows, result.rows)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        self.late += result.late
        self.too_late += result.too_late
        self.flush_s += result.flush_duration_s or 0.0
        self.stale_partitions += len(result.stale_partitions)
        self.last = result


def base_topic(topic: str, prefix: str) -> str:
    return topic[len(prefix):] if prefix and topic.startswith(prefix) else topic


def batch_result(
    *,
    records: Mapping[int, Mapping[str, list[Record]]],
    committed: Mapping[int, Folded],
    models: Mapping[int, PoolAggregate],
    letters: Sequence[DeadLetter],
    prefix: str,
    wall_ms: int,
) -> BatchResult:
    """`records`: partition -> full topic name -> the records folded; `models`: the live
    models of the committed partitions."""
    received: dict[str, int] = {}
    for p in committed:
        for topic, group in records[p].items():
            base = base_topic(topic, prefix)
            received[base] = received.get(base, 0) + len(group)
    dead: dict[str, int] = {}
    for letter in letters:
        if letter.record.partition in committed:
            base = base_topic(letter.record.topic, prefix)
            dead[base] = dead.get(base, 0) + 1
    duplicates: dict[str, int] = {}
    late = too_late = 0
    lags: list[int] = []
    partitions: dict[int, PartitionResult] = {}
    for p, f in committed.items():
        for base, n in ((Topic.SHARES, f.shares.duplicates if f.shares else 0),
                        (Topic.BLOCKS, f.blocks.duplicates if f.blocks else 0),
                        (Topic.MINERS, f.miner_duplicates)):
            if n:
                duplicates[base] = duplicates.get(base, 0) + n
        if f.shares is not None:
            late += f.shares.late
            too_late += f.shares.too_late
            lags.append(wall_ms - f.newest_share_ms)
        model = models.get(p)
        if model is not None:
            partitions[p] = PartitionResult(model, f.shares, f.blocks, tuple(f.connections))
    return BatchResult(
        partitions=partitions, received=received, duplicates=duplicates, dead_lettered=dead,
        late=late, too_late=too_late, batch_size=sum(received.values()), event_lag_ms=lags,
    )
