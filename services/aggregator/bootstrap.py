"""Wires the aggregator: the one place that picks concrete adapters.

settings -> PostgreSQL pool -> the store (adapters/store.py), the effort
refresher (adapters/maintenance.py), the outputs (outputs/ and plugins), the
Kafka consumer and the dead-letter producer -> the pipeline (consume/), which
knows them only through the Protocols of consume/ports.py and
consume/results.py.

Outputs are named in `AGGREGATOR_OUTPUTS`: the built-in ones by name
(`exporter`, `rollups`, `snapshots`, sharing one Prometheus registry), plugins
as "package.module:function" factories `(settings, pool) -> output(s)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from prometheus_client import CollectorRegistry

from shared.db.pool import create_pool
from shared.http.plugins import load_factory
from shared.kafka.consumer import BatchConsumer
from shared.kafka.deadletter import DeadLetterProducer
from shared.kafka.producer import EventProducer
from shared.kafka.topics import Topic, ensure_topics, topic_name
from shared.lifecycle import StartedParts

from .adapters.maintenance import EffortRefresher
from .adapters.store import AggregatorStore
from .config import BUILTIN_OUTPUTS, AggregatorSettings
from .consume.pipeline import Pipeline
from .consume.results import Output, PipelineStats
from .outputs.exporter import MetricsExporter
from .outputs.pool_queries import load_pool_figures
from .outputs.rollups import RollupJob
from .outputs.snapshot_stream import SnapshotPublisher
from .outputs.telemetry import AggregatorTelemetry

__all__ = ["INPUT_TOPICS", "Aggregator", "OutputFactory", "bootstrap", "build_outputs", "build_consumer"]

INPUT_TOPICS: Final = (Topic.SHARES, Topic.BLOCKS, Topic.MINERS)

OutputFactory = Callable[[AggregatorSettings, asyncpg.Pool], Any]
Readiness = Callable[[], Awaitable[str | None]]


@dataclass
class Aggregator:
    settings: AggregatorSettings
    pool: asyncpg.Pool
    producer: EventProducer
    store: AggregatorStore
    effort: EffortRefresher
    pipeline: Pipeline
    outputs: list[Output]  # what the pipeline hands each durable batch (started by it)
    _parts: StartedParts = field(default_factory=StartedParts)
    _closed: bool = False

    @property
    def stats(self) -> PipelineStats:
        return self.pipeline.stats

    async def start(self) -> None:
        """Topics, then the producer, the effort refresher, the pipeline (which starts the
        outputs and joins the group). If a part fails, those started are stopped before
        the error propagates."""
        try:
            await ensure_topics(self.settings)
            await self._parts.start((self.producer, self.effort, self.pipeline))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Graceful: the pipeline finishes and commits its batch, leaves the group; then the
        producer flushes. Safe to call twice."""
        await self._parts.stop()
        if not self._closed:
            self._closed = True
            await self.pool.close()


def build_outputs(
    settings: AggregatorSettings,
    db_pool: asyncpg.Pool,
    names: Iterable[str] = BUILTIN_OUTPUTS,
    *,
    stats: PipelineStats | None = None,
    registry: CollectorRegistry | None = None,
    readiness: Readiness | None = None,
) -> list[Output]:
    """The built-in outputs named (in the order of BUILTIN_OUTPUTS), on one registry: the
    exporter's, which also exports the pipeline's `stats` when given.

    `readiness`: an optional `async () -> str | None` for /readyz (None = ready, else why
    not); by default /readyz checks that PostgreSQL answers."""
    wanted = set(names)
    registry = registry or CollectorRegistry(auto_describe=True)
    telemetry = AggregatorTelemetry(registry)
    made: list[Output] = []
    if "exporter" in wanted:
        made.append(MetricsExporter.from_settings(settings, db_pool, registry=registry, telemetry=telemetry,
                                                  readiness=readiness, pipeline_stats=stats))
    if "rollups" in wanted:
        made.append(RollupJob.from_settings(settings, db_pool, telemetry=telemetry))
    if "snapshots" in wanted:
        async def pool_figures(as_of_ms: int, live_at_ms: int) -> dict[str, dict[str, Any]]:
            return await load_pool_figures(db_pool, as_of_ms=as_of_ms, live_at_ms=live_at_ms,
                                           multiplier=settings.hashrate_multiplier,
                                           timeout_s=settings.aggregator_db_timeout_s)

        made.append(SnapshotPublisher.from_settings(settings, telemetry=telemetry, load_pool_figures=pool_figures))
    return made


def _plugin_outputs(settings: AggregatorSettings, db_pool: asyncpg.Pool) -> list[Output]:
    made: list[Output] = []
    for spec in settings.aggregator_outputs:
        if spec in BUILTIN_OUTPUTS:
            continue
        factory: OutputFactory = load_factory(spec)  # type: ignore[assignment]
        output = factory(settings, db_pool)
        if output is None:
            continue
        made += [output] if hasattr(output, "on_batch") else list(output)
    return made


def build_consumer(settings: AggregatorSettings, client_id: str | None = None) -> BatchConsumer:
    """A member of the aggregator's group over the input topics. The range assignor gives
    partition p of every input topic to the same member (one model per partition number)."""
    return BatchConsumer(
        settings, INPUT_TOPICS, settings.aggregator_group_id,
        max_records=settings.aggregator_batch_max_records,
        poll_timeout_ms=settings.aggregator_poll_timeout_ms,
        client_id=client_id,
        session_timeout_ms=settings.aggregator_session_timeout_ms,
        heartbeat_interval_ms=settings.aggregator_heartbeat_interval_ms,
        max_poll_interval_ms=settings.aggregator_max_poll_interval_ms,
        partition_assignment_strategy=(RangePartitionAssignor,),
        max_partition_fetch_bytes=settings.aggregator_max_partition_fetch_bytes,
    )


async def bootstrap(settings: AggregatorSettings, *, client_id: str | None = None) -> Aggregator:
    pool = await create_pool(settings)
    try:
        stats = PipelineStats()
        outputs = build_outputs(settings, pool, settings.aggregator_outputs, stats=stats)
        outputs += _plugin_outputs(settings, pool)
        producer = EventProducer(settings, client_id=client_id or "aggregator")
        store = AggregatorStore(
            pool, topic_name(settings, settings.aggregator_group_id),
            timeout_s=settings.aggregator_db_timeout_s, dedup_horizon_ms=settings.dedup_horizon_ms,
            restore_minutes=settings.aggregator_restore_windows_minutes,
            restore_blocks=settings.aggregator_restore_blocks,
        )
        effort = EffortRefresher(
            pool, interval_s=settings.aggregator_maintenance_interval_s,
            lookback_ms=settings.max_lateness_ms + 3_600_000, timeout_s=settings.aggregator_db_timeout_s,
        )
        pipeline = Pipeline(
            settings, build_consumer(settings, client_id), store, DeadLetterProducer(producer, settings), effort,
            outputs=outputs, stats=stats,
        )
        return Aggregator(settings, pool, producer, store, effort, pipeline, outputs)
    except BaseException:
        await pool.close()
        raise
