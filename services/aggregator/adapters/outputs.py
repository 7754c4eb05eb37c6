"""What the aggregator pipeline hands its outputs after each batch, and the outputs themselves.

The pipeline (consumer, models, persistence) calls, for every processed batch
and only once its results are durable in PostgreSQL::

    outputs = build_outputs(settings, db_pool)
    await outputs.start()
    ...
    outputs.on_batch(BatchOutcome(partitions={p: PartitionOutcome(model, shares=result)}, ...))
    ...
    await outputs.stop()

`on_batch` is synchronous bookkeeping (no I/O, a few microseconds per changed
worker-minute) and never raises for data it does not know; the outputs do their
I/O in their own owned periodic tasks:

- `SnapshotPublisher` (snapshots.py): window figures to `chimera.snapshots`;
- `MetricsExporter` (exporter.py): Prometheus `/metrics`, `/healthz`, `/readyz`;
- `RollupJob` (rollups.py): hourly and daily roll-ups of the minute rows.

Models are referenced, not copied: the outputs read the live `PoolAggregate`
objects between batches, from the same event loop (no locking needed). A
partition the process no longer owns must be listed in `revoked` so its model
is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import asyncpg
from prometheus_client import CollectorRegistry

from services.aggregator.config import AggregatorSettings
from services.aggregator.domain.export_figures import common_as_of_ms, liveness_time_ms
from services.aggregator.domain.minutes import WorkerKey
from services.aggregator.domain.model import (
    BlockBatchResult,
    PoolAggregate,
    ShareBatchResult,
)
from shared.kafka.topics import Topic
from shared.lifecycle import StartedParts

__all__ = [
    "AggregatorOutput",
    "BatchOutcome",
    "ModelSet",
    "OutputSet",
    "PartitionOutcome",
    "build_outputs",
]

log = logging.getLogger(__name__)


# --- what the pipeline fills in -------------------------------------------------


@dataclass(slots=True)
class PartitionOutcome:
    """One input partition's model and what it did with its share of the batch."""

    model: PoolAggregate
    shares: ShareBatchResult | None = None  # what model.ingest_shares returned
    blocks: BlockBatchResult | None = None  # what model.ingest_blocks returned
    connections: Collection[WorkerKey] = ()  # workers with fresh miner (connect/disconnect) events


@dataclass(slots=True)
class BatchOutcome:
    """One processed batch, after its results are durable.

    Topics are BASE names (`Topic.SHARES` = "pool.shares", without the prefix);
    partitions are input partition numbers (a miner's events land in the same
    partition number on all three input topics, which is why one model serves one
    partition number)."""

    # partition -> its model and results; a partition with nothing new may be listed
    # with just its model (e.g. right after assignment) so the outputs know it.
    partitions: Mapping[int, PartitionOutcome] = field(default_factory=dict)
    received: Mapping[str, int] = field(default_factory=dict)  # base topic -> records in the batch
    duplicates: Mapping[str, int] = field(default_factory=dict)  # base topic -> repeated event_ids
    dead_lettered: Mapping[str, int] = field(default_factory=dict)  # base topic -> records dead-lettered
    late: int = 0  # shares counted into an already complete minute
    too_late: int = 0  # shares older than the lateness limit, dropped
    batch_size: int = 0  # records in the batch (all topics)
    event_lag_ms: Sequence[int] = ()  # samples of (processing wall clock - event ts) in ms
    flush_duration_s: float | None = None  # time to make the batch durable
    consumer_lag: Mapping[tuple[str, int], int] | None = None  # (base topic, partition) -> records behind
    revoked: Collection[int] = ()  # partitions no longer owned: their models are dropped

    def changed_workers(self) -> list[tuple[int, WorkerKey]]:
        """(partition, worker) for every worker whose rows or connection changed."""
        out: list[tuple[int, WorkerKey]] = []
        for partition, po in self.partitions.items():
            seen: set[WorkerKey] = set()
            for result in (po.shares, po.blocks):
                if result is not None:
                    seen.update(k[:3] for k in result.worker_deltas)  # type: ignore[misc]
            seen.update(po.connections)
            out.extend((partition, key) for key in seen)
        return out

    def changed_minutes(self) -> set[int]:
        """Minute starts (ms) whose persisted rows this batch changed."""
        minutes: set[int] = set()
        for po in self.partitions.values():
            for result in (po.shares, po.blocks):
                if result is not None:
                    minutes.update(minute for _pool, minute in result.pool_deltas)
        return minutes


@runtime_checkable
class AggregatorOutput(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Idempotent; safe before start()."""

    def on_batch(self, batch: BatchOutcome) -> None:
        """Bookkeeping only (no I/O); called after the batch is durable."""


# --- the models, as the outputs see them ---------------------------------------------


class ModelSet:
    """The live models by partition, the share partitions' lag, and a monotone as-of clock."""

    __slots__ = ("_as_of_ms", "_behind", "models")

    def __init__(self) -> None:
        self.models: dict[int, PoolAggregate] = {}
        self._behind: dict[int, int] = {}
        self._as_of_ms = 0

    def update(self, batch: BatchOutcome) -> None:
        for partition, po in batch.partitions.items():
            self.models[partition] = po.model
        for partition in batch.revoked:
            self.models.pop(partition, None)
            self._behind.pop(partition, None)
        for (topic, partition), behind in (batch.consumer_lag or {}).items():
            if topic == Topic.SHARES:
                self._behind[partition] = behind

    def items(self) -> list[tuple[int, PoolAggregate]]:
        return sorted(self.models.items(), key=lambda kv: kv[0])

    def live_at_ms(self, partition: int, now_ms: int) -> int:
        model = self.models.get(partition)
        if model is None:
            return now_ms
        return liveness_time_ms(now_ms, model.watermark_ms, self._behind.get(partition))

    def as_of_ms(self, now_ms: int) -> int:
        """Never earlier than a previous call: window figures do not go back in time."""
        self._as_of_ms = common_as_of_ms(now_ms, (m.watermark_ms for m in self.models.values()), self._as_of_ms)
        return self._as_of_ms


# --- all outputs as one -------------------------------------------------------------------


class OutputSet:
    """Starts outputs in order, stops them in reverse, fans `on_batch` out.

    An output whose `on_batch` raises is logged (with the exception) and skipped
    for that batch: an output's bug must not stop the pipeline."""

    def __init__(self, outputs: Sequence[AggregatorOutput]) -> None:
        self.outputs = list(outputs)
        self._parts = StartedParts()

    async def start(self) -> None:
        await self._parts.start(self.outputs)

    async def stop(self) -> None:
        await self._parts.stop()

    def observe_pipeline(self, stats: Any) -> None:
        """Hand the pipeline's running totals to the outputs that export them."""
        for output in self.outputs:
            observe = getattr(output, "observe_pipeline", None)
            if observe is not None:
                observe(stats)

    def on_batch(self, batch: BatchOutcome) -> None:
        for output in self.outputs:
            try:
                output.on_batch(batch)
            except Exception:
                log.exception("output %s failed on a batch", type(output).__name__)


def build_outputs(
    settings: AggregatorSettings,
    db_pool: asyncpg.Pool,
    *,
    registry: CollectorRegistry | None = None,
    readiness: Any = None,
) -> OutputSet:
    """The three outputs wired to one registry (the exporter's), ready to start.

    `readiness`: an optional `async () -> str | None` for /readyz (None = ready,
    else why not); by default /readyz checks that PostgreSQL answers."""
    from services.aggregator.adapters.exporter import MetricsExporter
    from services.aggregator.adapters.pool_figures import load_pool_figures
    from services.aggregator.adapters.rollups import RollupJob
    from services.aggregator.adapters.snapshots import SnapshotPublisher
    from services.aggregator.telemetry import AggregatorTelemetry

    registry = registry or CollectorRegistry(auto_describe=True)
    telemetry = AggregatorTelemetry(registry)
    exporter = MetricsExporter.from_settings(settings, db_pool, registry=registry, telemetry=telemetry,
                                             readiness=readiness)

    async def pool_figures(as_of_ms: int, live_at_ms: int) -> dict[str, dict[str, Any]]:
        return await load_pool_figures(db_pool, as_of_ms=as_of_ms, live_at_ms=live_at_ms,
                                       multiplier=settings.hashrate_multiplier,
                                       timeout_s=settings.aggregator_db_timeout_s)

    snapshots = SnapshotPublisher.from_settings(settings, telemetry=telemetry, pool_figures=pool_figures)
    rollups = RollupJob.from_settings(settings, db_pool, telemetry=telemetry)
    return OutputSet([exporter, rollups, snapshots])
