"""The snapshot stream: current window figures on `chimera.snapshots`, for the alerter.

Every `interval_s` (a tick) the publisher sends:

- one record per pool (always),
- one record per worker that changed since it was last sent (new or
  rewritten minute rows, a connection event, or a liveness deadline that
  passed: a worker that stops sends nothing, so the deadline it was last
  published with is watched), and one per miner of those workers,
- at most `max_records_per_tick` worker records per tick (plus their miners);
  liveness changes (connection events, passed deadlines) go first, then the
  other changes oldest first, so no entity waits more than
  ceil(pending / max_records_per_tick) ticks,
- a full sweep (every worker, with its miner) at most every
  `full_sweep_ticks` ticks, spread over ticks by the same bound, so a consumer
  that starts late sees every entity within a sweep.

`on_batch` only notes which workers changed (one dict write per changed
worker-minute); indexing and figures happen in the tick, once per worker
however many batches touched it in between.

Records (schema in docs/aggregator.md): key `pool:<pool>`,
`miner:<pool>/<miner>` or `worker:<pool>/<miner>/<worker>` (UTF-8), value JSON
`{"entity", "pool", "miner"?, "worker"?, "as_of_ms", "figures"}`.

Kafka trouble never stops the pipeline: a tick whose records are not
acknowledged is counted and logged, its workers go back to the pending set,
and the next tick tries again (with fresher figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final, Literal

import orjson

from services.aggregator.config import AggregatorSettings
from services.aggregator.consume.results import BatchResult
from services.aggregator.domain.export_deadlines import DeadlineWatch
from services.aggregator.domain.export_figures import (
    MinerKey,
    miner_figures,
    pool_activity,
    pool_figures_from_models,
    pools_of,
    worker_figures,
)
from services.aggregator.domain.minutes import WorkerKey
from services.aggregator.errors import StoreError
from services.aggregator.outputs.model_set import ModelSet
from services.aggregator.outputs.telemetry import AggregatorTelemetry
from shared.clock import now_ms
from shared.kafka.producer import EventProducer, OutgoingRecord, ProduceError
from shared.kafka.topics import Topic, topic_name
from shared.periodic import PeriodicTask
from shared.settings import ServiceSettings

__all__ = ["SnapshotPublisher", "TickReport", "entity_key", "snapshot_value"]

log = logging.getLogger(__name__)

Entity = Literal["pool", "miner", "worker"]
# (as_of_ms, live_at_ms) -> pool -> figures: see pool_queries.py
PoolFiguresLoader = Callable[[int, int], Awaitable[Mapping[str, dict[str, Any]]]]
_CHUNK: Final = 500  # entities computed between yields to the event loop



def entity_key(entity: Entity, pool: str, miner: str | None = None, worker: str | None = None) -> bytes:
    """`pool:<pool>`, `miner:<pool>/<miner>` or `worker:<pool>/<miner>/<worker>` as UTF-8."""
    if entity == "pool":
        return f"pool:{pool}".encode()
    if entity == "miner":
        return f"miner:{pool}/{miner}".encode()
    return f"worker:{pool}/{miner}/{worker}".encode()


def snapshot_value(
    entity: Entity, pool: str, as_of_ms: int, figures: dict[str, Any],
    miner: str | None = None, worker: str | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {"entity": entity, "pool": pool}
    if miner is not None:
        value["miner"] = miner
    if worker is not None:
        value["worker"] = worker
    value["as_of_ms"] = as_of_ms
    value["figures"] = figures
    return value


@dataclass(slots=True)
class TickReport:
    """What one tick did (for tests and logs)."""

    as_of_ms: int
    records: dict[str, int] = field(default_factory=lambda: {"pool": 0, "miner": 0, "worker": 0})
    pending_left: int = 0
    sweep_started: bool = False
    error: ProduceError | None = None


class SnapshotPublisher:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        interval_s: float = 5.0,
        max_records_per_tick: int = 5_000,
        full_sweep_ticks: int = 60,
        telemetry: AggregatorTelemetry | None = None,
        producer: EventProducer | None = None,
        clock_ms: Callable[[], int] = now_ms,
        load_pool_figures: PoolFiguresLoader | None = None,
    ) -> None:
        self.topic = topic_name(settings, Topic.SNAPSHOTS)
        # Pool records from the database, which sums every member's partitions
        # (pool_queries.py); without a loader, from this process's models.
        self._load_pool_figures = load_pool_figures
        self.interval_s = interval_s
        self.max_records_per_tick = max_records_per_tick
        self.full_sweep_ticks = full_sweep_ticks
        self._telemetry = telemetry
        self._own_producer = producer is None
        self._producer = producer or EventProducer(settings, client_id="aggregator-snapshots")
        self._clock_ms = clock_ms
        self.models = ModelSet()
        # worker -> partition: changed since the last tick (not indexed yet), waiting, urgent
        self._new: dict[WorkerKey, int] = {}
        self._pending: dict[WorkerKey, int] = {}
        self._urgent: dict[WorkerKey, int] = {}
        self._workers_of: dict[MinerKey, set[str]] = {}
        self._watches: dict[int, DeadlineWatch[WorkerKey]] = {}
        self._ticks = 0
        self._catching_up: dict[int, bool] = {}  # partition -> its windows lack data on its way (this tick)
        self._last_sweep_tick: int | None = None
        self._task = PeriodicTask("snapshot-publisher", self._tick_step, interval_s, run_at_start=False)
        self._connected = False
        self._connecting: asyncio.Future[None] | None = None

    @classmethod
    def from_settings(cls, settings: AggregatorSettings, **kwargs: Any) -> SnapshotPublisher:
        return cls(
            settings,
            interval_s=settings.snapshot_interval_s,
            max_records_per_tick=settings.snapshot_max_records_per_tick,
            full_sweep_ticks=settings.snapshot_full_sweep_ticks,
            **kwargs,
        )

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Returns at once; the producer connects on the first tick (retried every tick)."""
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        connecting, self._connecting = self._connecting, None
        if connecting is not None:  # a connection attempt a stop interrupted: let it finish, then close
            with contextlib.suppress(Exception):
                await connecting
        if self._own_producer:
            await self._producer.stop()
        self._connected = False

    async def _connect(self) -> None:
        """Start the producer; shielded, so a cancelled tick cannot leave a half-started client."""
        if self._connected:
            return
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._producer.start())
        connecting = self._connecting
        try:
            await asyncio.shield(connecting)
        finally:
            if connecting.done():
                self._connecting = None
                self._connected = not connecting.cancelled() and connecting.exception() is None

    @property
    def pending(self) -> int:
        """Workers waiting for a tick (changed since their last record)."""
        new = sum(1 for k in self._new if k not in self._pending and k not in self._urgent)
        return len(self._pending) + len(self._urgent) + new

    # --- bookkeeping (per batch: cheap) ------------------------------------------------

    def on_batch(self, batch: BatchResult) -> None:
        self.models.update(batch)
        new = self._new
        for partition, po in batch.partitions.items():
            for result in (po.shares, po.blocks):
                if result is not None:
                    for pool, miner, worker, _minute in result.worker_deltas:
                        new[pool, miner, worker] = partition
            for key in po.connections:
                self._urgent[key] = partition
        for partition in batch.revoked:
            self._watches.pop(partition, None)

    # --- ticks --------------------------------------------------------------------------

    async def _tick_step(self) -> None:
        await self.tick()

    def _absorb(self) -> None:
        """Index the workers noted since the last tick, queue them and watch their deadlines
        as they are now. The queue can be longer than many ticks' budget (more workers
        changing than a tick may send): a worker that stops while it waits there must still
        jump it when its deadline passes, even if it was never published. Watched again on
        every change: a young worker's deadline shrinks from the ceiling as its rate shows."""
        workers_of = self._workers_of
        for changed in (self._new, self._urgent):
            for (pool, miner, worker) in changed:
                names = workers_of.get((pool, miner))
                if names is None:
                    names = workers_of[(pool, miner)] = set()
                names.add(worker)
        models, watches = self.models.models, self._watches
        for key, partition in self._new.items():
            model = models.get(partition)
            deadline = model.liveness.offline_deadline_ms(key) if model is not None else None
            if deadline is not None:
                watch = watches.get(partition)
                if watch is None:
                    watch = watches[partition] = DeadlineWatch()
                watch.watch(key, deadline)
        self._pending.update(self._new)
        self._new = {}

    def _sweep(self) -> None:
        """Queue every worker and rebuild the miner index from the models."""
        self._workers_of.clear()
        for partition, model in self.models.items():
            for key in list(model.workers.keys()):
                self._new[key] = partition

    def _take(self) -> list[tuple[WorkerKey, int]]:
        budget = self.max_records_per_tick
        taken = list(islice(self._urgent.items(), budget))
        for key, _ in taken:
            del self._urgent[key]
            self._pending.pop(key, None)
        rest = list(islice(self._pending.items(), budget - len(taken)))
        for key, _ in rest:
            del self._pending[key]
        return taken + rest

    def _read_ahead(self, taken: list[tuple[WorkerKey, int]], as_of_ms: int) -> None:
        """Window totals of the tick's workers and of their miners' workers, one numpy pass per
        model: the figure builders then read them key by key without a numpy call each."""
        by_partition: dict[int, set[WorkerKey]] = {}
        for key, partition in taken:
            keys = by_partition.setdefault(partition, set())
            keys.add(key)
            pool, miner, _ = key
            keys.update((pool, miner, w) for w in self._workers_of.get((pool, miner), ()))
        for partition, keys in by_partition.items():
            model = self.models.models.get(partition)
            if model is not None:
                model.workers.read_ahead(list(keys), as_of_ms)

    async def tick(self) -> TickReport:
        """Compute and send one tick's records; returns what was sent."""
        started = time.perf_counter()
        now_ms = self._clock_ms()
        as_of_ms = self.models.as_of_ms(now_ms)
        report = TickReport(as_of_ms)
        self._ticks += 1
        if self._last_sweep_tick is None or self._ticks - self._last_sweep_tick >= self.full_sweep_ticks:
            self._sweep()
            self._last_sweep_tick = self._ticks
            report.sweep_started = True
        live_at = {p: self.models.live_at_ms(p, now_ms) for p in self.models.models}
        self._catching_up = {p: self.models.catching_up(p, now_ms) for p in self.models.models}
        for partition, watch in self._watches.items():
            for key in watch.due(live_at.get(partition, now_ms)):
                self._urgent[key] = partition
        self._absorb()

        records = await self._pool_records(now_ms, as_of_ms, live_at, report)
        taken = self._take()
        self._read_ahead(taken, as_of_ms)
        miners: dict[MinerKey, int] = {}
        for i, (key, partition) in enumerate(taken):
            record = self._worker_record(key, partition, now_ms, as_of_ms, live_at, report)
            if record is not None:
                records.append(record)
                miners[(key[0], key[1])] = partition
            if i % _CHUNK == _CHUNK - 1:
                await asyncio.sleep(0)
        for i, (mk, partition) in enumerate(miners.items()):
            record = self._miner_record(mk, partition, now_ms, as_of_ms, live_at, report)
            if record is not None:
                records.append(record)
            if i % _CHUNK == _CHUNK - 1:
                await asyncio.sleep(0)
        try:
            await self._connect()
            await self._producer.send_batch(records)
        except ProduceError as exc:
            report.error = exc
            for key, partition in taken:  # fresher figures next tick
                self._pending.setdefault(key, partition)
            if self._telemetry is not None:
                self._telemetry.snapshot_failures.inc()
            log.warning("snapshot tick: %d record(s) not published to %s: %s", len(records), self.topic, exc)
        else:
            if self._telemetry is not None:
                for entity, n in report.records.items():
                    if n:
                        self._telemetry.snapshot_records.labels(entity).inc(n)
        report.pending_left = len(self._pending) + len(self._urgent)
        if self._telemetry is not None:
            self._telemetry.snapshot_pending.set(report.pending_left)
            self._telemetry.snapshot_tick_s.observe(time.perf_counter() - started)
        return report

    async def _pool_records(
        self, now_ms: int, as_of_ms: int, live_at: dict[int, int], report: TickReport
    ) -> list[OutgoingRecord]:
        if self._load_pool_figures is not None:
            try:
                # Liveness as of the laggiest partition here: a lagging member must not
                # report workers offline that it has simply not caught up with.
                by_pool = await self._load_pool_figures(as_of_ms, min(live_at.values(), default=now_ms))
            except StoreError as exc:  # no pool records rather than a part of a pool
                log.warning("pool snapshot records skipped this tick: %s", exc)
                by_pool = {}
        else:
            models = [m for _, m in self.models.items()]
            activity = pool_activity((m, live_at.get(p, now_ms)) for p, m in self.models.items())
            by_pool = {pool: pool_figures_from_models(pool, models, as_of_ms, activity) for pool in pools_of(models)}
        behind = any(self._catching_up.values())
        out = []
        for pool in sorted(by_pool):
            by_pool[pool]["catching_up"] = behind
            out.append(self._record("pool", pool, now_ms, by_pool[pool]))
            report.records["pool"] += 1
        return out

    def _worker_record(
        self, key: WorkerKey, partition: int, now_ms: int, as_of_ms: int, live_at: dict[int, int],
        report: TickReport,
    ) -> OutgoingRecord | None:
        model = self.models.models.get(partition)
        pool, miner, worker = key
        if model is None or key not in model.workers:  # revoked, or pruned after a day idle
            names = self._workers_of.get((pool, miner))
            if names is not None:
                names.discard(worker)
                if not names:
                    del self._workers_of[(pool, miner)]
            return None
        figures = worker_figures(model, key, as_of_ms, live_at.get(partition, now_ms))
        figures["catching_up"] = self._catching_up.get(partition, False)
        if figures["online"]:
            deadline = model.liveness.offline_deadline_ms(key)
            if deadline is not None:
                self._watches.setdefault(partition, DeadlineWatch()).watch(key, deadline)
        report.records["worker"] += 1
        return self._record("worker", pool, now_ms, figures, miner, worker)

    def _miner_record(
        self, mk: MinerKey, partition: int, now_ms: int, as_of_ms: int, live_at: dict[int, int],
        report: TickReport,
    ) -> OutgoingRecord | None:
        model = self.models.models.get(partition)
        if model is None:
            return None
        pool, miner = mk
        names = sorted(self._workers_of.get(mk, ()))
        figures = miner_figures(model, pool, miner, names, as_of_ms, live_at.get(partition, now_ms))
        figures["catching_up"] = self._catching_up.get(partition, False)
        report.records["miner"] += 1
        return self._record("miner", pool, now_ms, figures, miner)

    def _record(
        self, entity: Entity, pool: str, as_of_ms: int, figures: dict[str, Any],
        miner: str | None = None, worker: str | None = None,
    ) -> OutgoingRecord:
        value = snapshot_value(entity, pool, as_of_ms, figures, miner, worker)
        return OutgoingRecord(self.topic, entity_key(entity, pool, miner, worker), orjson.dumps(value))
