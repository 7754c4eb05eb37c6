"""What the pipeline hands its outputs after each durable batch, and its running counts.

`BatchResult` is built by the pipeline only after the batch's transaction
committed. Its fields follow the outputs' own description of a batch (snapshot
publisher, exporter, roll-ups), by name and meaning, so any output written
against that shape reads it without this module importing theirs:

- `partitions`: partition number -> the live model and what it did this batch
  (a partition just taken over appears with its model only),
- `revoked`: partitions this process no longer owns (their models are gone),
- per BASE topic (`pool.shares`...): records received, duplicates, dead letters,
- late / too-late shares, batch size, event-time lag samples, flush duration,
  consumer lag per (base topic, partition).

An output is any object with `start()`, `stop()` (async) and `on_batch(result)`
(plain or async). `PipelineStats` accumulates the same counts for telemetry hooks
and tests.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .domain.minutes import WorkerKey
from .domain.model import BlockBatchResult, PoolAggregate, ShareBatchResult

__all__ = ["BatchResult", "Output", "PartitionResult", "PipelineStats"]


class Output(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def on_batch(self, result: BatchResult) -> Any: ...  # may return an awaitable


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
