"""Wires the aggregator: settings -> PostgreSQL pool, producer (dead letters), store -> pipeline.

Outputs (snapshot stream, Prometheus exporter, roll-ups) are not known here:
the caller passes them in, as objects with `start()`, `stop()` and
`on_batch(result)`, or as factories `(settings, pool) -> output(s)` named in
the `AGGREGATOR_OUTPUTS` setting ("package.module:function", comma-separated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.db.pool import create_pool
from shared.http.plugins import load_factory
from shared.kafka.deadletter import DeadLetterProducer
from shared.kafka.producer import EventProducer
from shared.kafka.topics import ensure_topics, topic_name
from shared.lifecycle import StartedParts

from .adapters.store import AggregatorStore
from .config import AggregatorSettings
from .pipeline import Pipeline
from .results import Output, PipelineStats

__all__ = ["Aggregator", "OutputFactory", "bootstrap", "load_output_factories"]


OutputFactory = Callable[[AggregatorSettings, asyncpg.Pool], Any]


@dataclass
class Aggregator:
    settings: AggregatorSettings
    pool: asyncpg.Pool
    producer: EventProducer
    store: AggregatorStore
    pipeline: Pipeline
    outputs: Sequence[Output] = ()  # what the pipeline hands each durable batch (owned by it)
    _parts: StartedParts = field(default_factory=StartedParts)
    _closed: bool = False

    @property
    def stats(self) -> PipelineStats:
        return self.pipeline.stats

    async def start(self) -> None:
        """Topics, then the producer, then the pipeline (which starts the outputs and joins
        the group). If a part fails, those started are stopped before the error propagates."""
        try:
            await ensure_topics(self.settings)
            await self._parts.start((self.producer, self.pipeline))
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


def _as_outputs(made: Any) -> list[Output]:
    if made is None:
        return []
    if hasattr(made, "on_batch"):
        return [made]
    return list(made)


def load_output_factories(specs: Iterable[str]) -> list[OutputFactory]:
    return [load_factory(spec) for spec in specs]  # type: ignore[misc]


async def bootstrap(
    settings: AggregatorSettings,
    *,
    outputs: Sequence[Output] = (),
    output_factories: Sequence[OutputFactory] = (),
    client_id: str | None = None,
) -> Aggregator:
    pool = await create_pool(settings)
    try:
        made = list(outputs)
        for factory in (*load_output_factories(settings.aggregator_outputs), *output_factories):
            made += _as_outputs(factory(settings, pool))
        producer = EventProducer(settings, client_id=client_id or "aggregator")
        store = AggregatorStore(
            pool, topic_name(settings, settings.aggregator_group_id),
            timeout_s=settings.aggregator_db_timeout_s, dedup_horizon_ms=settings.dedup_horizon_ms,
        )
        pipeline = Pipeline(settings, store, DeadLetterProducer(producer, settings), outputs=made,
                            client_id=client_id)
        for output in made:  # outputs that export the pipeline's own totals (failed writes, take-overs)
            observe = getattr(output, "observe_pipeline", None)
            if observe is not None:
                observe(pipeline.stats)
        return Aggregator(settings, pool, producer, store, pipeline, made)
    except BaseException:
        await pool.close()
        raise
