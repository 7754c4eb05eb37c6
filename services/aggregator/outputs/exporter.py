"""Prometheus `/metrics` of the aggregator (plus `/healthz`, `/readyz`) on `metrics_host:metrics_port`.

The seed's metric names, from the in-memory models through a custom collector,
so a scrape costs O(exported series), not O(workers):

- per pool: `pool_total_hashrate{pool,window}`, `pool_shares_per_second{pool,window}`,
  `pool_active_miners{pool}`, `pool_active_workers{pool}`, `pool_blocks_found_total{pool}`,
  `pool_uptime_seconds{pool}`;
- per miner, only the top N by hashrate (over `rank_window`) plus the allow-list:
  `miner_hashrate{pool,miner,window}`, `miner_shares_submitted_total{pool,miner}`,
  `miner_shares_accepted_total{pool,miner}`, `miner_shares_rejected_total{pool,miner}`,
  `miner_online{pool,miner}`;
- per host, the latest row of `performance_metrics` (not older than
  `performance_max_age_s`): `pool_cpu_usage{host}`, `pool_memory_usage{host}`,
  `pool_disk_usage{host}` (percent);
- the service's own `chimera_aggregator_*` metrics (telemetry.py).

What is O(workers) runs in owned periodic tasks, chunked so the event loop keeps
serving: the active counts (every `refresh_interval_s`, with the PostgreSQL
reads: performance rows and block counts) and the miner ranking (every
`rank_interval_s`). Hashrates are computed at scrape time.

Share counters count the shares this process aggregated since the miner got
its series (keeping a counter per miner for every miner would cost a lookup
and memory per miner for series nobody exports; a new series starting at 0 is
what Prometheus expects, and rate() is unaffected). Blocks found come from the
`blocks` table, so they survive restarts. With several aggregator processes
each exports the pools' figures of the partitions it owns: sum hashrate,
shares and active counts by pool; blocks found, uptime and the performance
gauges are the same in every process (take max).

The app is served inside the aggregator's event loop by `EmbeddedHttpServer`
(a taken port is an `HttpServerStartError` naming it, not an exit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.aggregator.config import AggregatorSettings
from services.aggregator.consume.results import BatchResult, PipelineStats
from services.aggregator.domain.export_figures import (
    MinerKey,
    PoolActivity,
    pool_activity,
    pools_of,
    sum_totals,
)
from services.aggregator.domain.export_selection import PoolUptime, select_miners
from services.aggregator.domain.minutes import WorkerKey
from services.aggregator.domain.model import PoolAggregate
from services.aggregator.domain.windows import DEFAULT_MULTIPLIER, WINDOWS, hashrate_hs, shares_per_second
from services.aggregator.outputs.model_set import ModelSet
from services.aggregator.outputs.telemetry import AggregatorTelemetry, PipelineCounters
from shared.clock import now_ms
from shared.db.errors import DATABASE_ERRORS
from shared.http.embedded import EmbeddedHttpServer
from shared.http.headers import SecurityHeaders
from shared.periodic import PeriodicTask

__all__ = ["MetricsExporter"]

log = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[str | None]]
_CHUNK: Final = 2000  # workers ranked between yields to the event loop
_PERFORMANCE_SQL: Final = """
SELECT DISTINCT ON (host) host, cpu_usage, memory_usage, disk_usage
FROM performance_metrics WHERE ts >= $1 ORDER BY host, ts DESC
"""
_BLOCKS_SQL: Final = "SELECT pool, count(*)::bigint AS n FROM blocks GROUP BY pool"
_PERFORMANCE_FAMILIES: Final = (
    ("pool_cpu_usage", "CPU usage percentage (latest report per host)"),
    ("pool_memory_usage", "Memory usage percentage (latest report per host)"),
    ("pool_disk_usage", "Disk usage percentage (latest report per host)"),
)



class MetricsExporter:
    def __init__(
        self,
        *,
        db_pool: asyncpg.Pool | None,
        host: str = "127.0.0.1",
        port: int = 9101,
        top_miners: int = 100,
        allowlist: Collection[str] = (),
        rank_window: str = "1h",
        refresh_interval_s: float = 10.0,
        rank_interval_s: float = 60.0,
        performance_max_age_s: float = 900.0,
        pool_down_after_s: float = 300.0,
        registry: CollectorRegistry | None = None,
        telemetry: AggregatorTelemetry | None = None,
        readiness: Readiness | None = None,
        clock_ms: Callable[[], int] = now_ms,
        pipeline_stats: PipelineStats | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.top_miners = top_miners
        self.allowlist = frozenset(allowlist)
        self._rank_index = WINDOWS.index(rank_window)
        self._performance_max_age_s = performance_max_age_s
        self._db = db_pool
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.telemetry = telemetry or AggregatorTelemetry(self.registry)
        self._readiness = readiness
        self._clock_ms = clock_ms
        self.models = ModelSet()
        # (pool, miner) -> [submitted, accepted, rejected] since this process started
        self._counters: dict[MinerKey, list[int]] = {}
        self._selected: list[tuple[MinerKey, int, list[str]]] = []  # (miner, partition, workers)
        self._ranked_models = False  # has a ranking seen any model yet?
        self._activity: PoolActivity = {}
        self._uptime = PoolUptime(int(pool_down_after_s * 1000))
        self._performance: list[tuple[str, float | None, float | None, float | None]] = []
        self._blocks: dict[str, int] | None = None  # None until PostgreSQL answered once
        self._refresh_task = PeriodicTask("exporter-refresh", self.refresh, refresh_interval_s)
        self._rank_task = PeriodicTask("exporter-rank", self.rank, rank_interval_s)
        self._http = EmbeddedHttpServer(self.app(), host, port)
        self.registry.register(_Collector(self))
        if pipeline_stats is not None:  # the pipeline's own totals: failed writes, take-overs
            self.registry.register(PipelineCounters(pipeline_stats))

    @classmethod
    def from_settings(cls, settings: AggregatorSettings, db_pool: asyncpg.Pool | None, **kwargs: Any) -> MetricsExporter:
        return cls(
            db_pool=db_pool,
            host=settings.metrics_host,
            port=settings.metrics_port,
            top_miners=settings.exporter_top_miners,
            allowlist=settings.exporter_miner_allowlist,
            rank_window=settings.exporter_rank_window,
            refresh_interval_s=settings.exporter_refresh_interval_s,
            rank_interval_s=settings.exporter_rank_interval_s,
            performance_max_age_s=settings.exporter_performance_max_age_s,
            pool_down_after_s=settings.pool_down_after_s,
            **kwargs,
        )

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve; raises HttpServerStartError when the port is taken."""
        await self._http.start()
        self.port = self._http.port
        self._refresh_task.start()
        self._rank_task.start()

    async def stop(self) -> None:
        await self._refresh_task.stop()
        await self._rank_task.stop()
        await self._http.stop()

    def app(self) -> FastAPI:
        # No slash redirects (their Location comes from the client's Host header), and the
        # same response headers as the public API.
        app = FastAPI(title="Chimera aggregator", docs_url=None, redoc_url=None, openapi_url=None,
                      redirect_slashes=False)
        app.add_middleware(SecurityHeaders)

        @app.get("/metrics")
        async def metrics() -> Response:  # async: the collector reads the models on the loop's thread
            return Response(self.render(), media_type=CONTENT_TYPE_LATEST)

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/readyz")
        async def readyz() -> Response:
            why = await self.not_ready()
            if why is None:
                return JSONResponse({"status": "ready"})
            return JSONResponse({"error": f"not ready: {why}", "details": [], "status": "not ready"}, 503)

        return app

    async def not_ready(self) -> str | None:
        if self._readiness is not None:
            return await self._readiness()
        if self._db is None:
            return None
        try:
            async with asyncio.timeout(2.0):
                await self._db.fetchval("SELECT 1")
        except DATABASE_ERRORS as exc:
            return f"PostgreSQL did not answer: {exc!r}"
        return None

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --- bookkeeping -----------------------------------------------------------------------

    def on_batch(self, batch: BatchResult) -> None:
        self.models.update(batch)
        counters = self._counters  # only miners that have (had) series: a lookup per delta
        if counters:
            for po in batch.partitions.values():
                if po.shares is None:
                    continue
                for (pool, miner, _worker, _minute), stats in po.shares.worker_deltas.items():
                    c = counters.get((pool, miner))
                    if c is not None:
                        c[0] += stats.accepted + stats.rejected + stats.stale
                        c[1] += stats.accepted
                        c[2] += stats.rejected
        self.telemetry.partitions_owned.set(len(self.models.models))
        self.telemetry.record_batch(batch)

    # --- periodic work ------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Active counts and uptime (O(workers)), then the PostgreSQL reads. Ranks too
        while no ranking has seen any model yet (right after start)."""
        now_ms = self._clock_ms()
        items = self.models.items()
        if items and not self._ranked_models:
            await self.rank()
        self._activity = pool_activity((m, self.models.live_at_ms(p, now_ms)) for p, m in items)
        as_of = self.models.as_of_ms(now_ms)
        models = [m for _, m in items]
        for pool in pools_of(models):
            recent = sum_totals(lambda t, pool=pool: [m.pools.totals(pool, t) for m in models if pool in m.pools],
                                as_of)
            self._uptime.observe(pool, recent.submitted[WINDOWS.index("5m")] > 0, now_ms)
        if self._db is None:
            return
        try:
            since = time.time() - self._performance_max_age_s
            async with self._db.acquire() as conn:
                rows = await conn.fetch(_PERFORMANCE_SQL, datetime.fromtimestamp(since, UTC))
                blocks = await conn.fetch(_BLOCKS_SQL)
        except DATABASE_ERRORS as exc:
            self.telemetry.exporter_refresh_failures.labels("database").inc()
            log.warning("exporter: PostgreSQL read failed, keeping the previous figures: %r", exc)
            return
        self._performance = [(r["host"], r["cpu_usage"], r["memory_usage"], r["disk_usage"]) for r in rows]
        self._blocks = {r["pool"]: r["n"] for r in blocks}

    async def rank(self) -> None:
        """Pick the exported miners: top N by hashrate over the rank window + allow-list."""
        now_ms = self._clock_ms()
        as_of = self.models.as_of_ms(now_ms)
        w = self._rank_index
        difficulty: dict[MinerKey, float] = {}
        workers: dict[MinerKey, list[str]] = {}
        partition_of: dict[MinerKey, int] = {}
        for partition, model in self.models.items():
            keys = list(model.workers.keys())
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start:start + _CHUNK]
                # One numpy pass per chunk: a read per key would cost a numpy call each.
                ranked = model.workers.totals_many(chunk, as_of).difficulty[:, w].tolist()
                for key, value in zip(chunk, ranked, strict=True):
                    mk = (key[0], key[1])
                    difficulty[mk] = difficulty.get(mk, 0.0) + value
                    workers.setdefault(mk, []).append(key[2])
                    partition_of[mk] = partition
                await asyncio.sleep(0)
        chosen = select_miners(difficulty.items(), self.top_miners, self.allowlist)
        self._selected = [(mk, partition_of[mk], sorted(workers[mk])) for mk in chosen]
        for mk in chosen:
            self._counters.setdefault(mk, [0, 0, 0])
        for mk in [mk for mk in self._counters if mk not in difficulty]:
            del self._counters[mk]  # gone from every model (pruned after a day idle)
        self._ranked_models = self._ranked_models or bool(self.models.models)
        self.telemetry.exported_miners.set(len(self._selected))

    # --- the families ------------------------------------------------------------------------------

    def families(self) -> Iterator[Metric]:
        now_ms = self._clock_ms()
        as_of = self.models.as_of_ms(now_ms)
        items = self.models.items()
        models = [m for _, m in items]
        yield from self._pool_families(models, as_of, now_ms)
        yield from self._miner_families(as_of, now_ms)
        yield from self._performance_families()

    def _pool_families(self, models: list[PoolAggregate], as_of: int, now_ms: int) -> Iterator[Metric]:
        hashrate = GaugeMetricFamily("pool_total_hashrate", "Pool hashrate in H/s over each window",
                                     labels=["pool", "window"])
        sps = GaugeMetricFamily("pool_shares_per_second", "Shares (any status) per second over each window",
                                labels=["pool", "window"])
        miners = GaugeMetricFamily("pool_active_miners", "Miners with at least one online worker",
                                   labels=["pool"])
        workers = GaugeMetricFamily("pool_active_workers", "Online workers", labels=["pool"])
        blocks = CounterMetricFamily("pool_blocks_found", "Blocks found by the pool (any status)",
                                     labels=["pool"])
        uptime = GaugeMetricFamily("pool_uptime_seconds",
                                   "Seconds the pool has been hashing without a silence of POOL_DOWN_AFTER_S",
                                   labels=["pool"])
        share_pools = pools_of(models)
        block_counts = self._block_counts(models, share_pools)
        for pool in sorted(share_pools | set(block_counts)):
            holders = [m for m in models if pool in m.pools]
            totals = sum_totals(lambda t, hs=holders, pool=pool: [m.pools.totals(pool, t) for m in hs], as_of)
            multiplier = holders[0].multiplier if holders else DEFAULT_MULTIPLIER
            for i, window in enumerate(WINDOWS):
                hashrate.add_metric([pool, window], hashrate_hs(totals.difficulty[i], totals.span_ms[i], multiplier))
                sps.add_metric([pool, window], shares_per_second(totals.submitted[i], totals.span_ms[i]))
            active_miners, active_workers = self._activity.get(pool, (0, 0))
            miners.add_metric([pool], active_miners)
            workers.add_metric([pool], active_workers)
            blocks.add_metric([pool], block_counts.get(pool, 0))
            uptime.add_metric([pool], self._uptime.seconds(pool, now_ms))
        yield from (hashrate, sps, miners, workers, blocks, uptime)

    def _block_counts(self, models: list[PoolAggregate], pools: set[str]) -> dict[str, int]:
        if self._blocks is not None:
            return self._blocks
        # PostgreSQL has not answered yet: what this process has seen.
        return {pool: sum(m.ledger.blocks_found(pool) for m in models) for pool in pools}

    def _read_ahead_selected(self, as_of: int) -> None:
        """The selected miners' workers read in one pass per model, not a numpy call per miner."""
        by_partition: dict[int, list[WorkerKey]] = {}
        for (pool, miner), partition, names in self._selected:
            by_partition.setdefault(partition, []).extend((pool, miner, w) for w in names)
        for partition, keys in by_partition.items():
            model = self.models.models.get(partition)
            if model is not None:
                model.workers.read_ahead(keys, as_of)

    def _miner_families(self, as_of: int, now_ms: int) -> Iterator[Metric]:
        hashrate = GaugeMetricFamily("miner_hashrate", "Miner hashrate in H/s over each window",
                                     labels=["pool", "miner", "window"])
        submitted = CounterMetricFamily("miner_shares_submitted", "Shares submitted (any status)",
                                        labels=["pool", "miner"])
        accepted = CounterMetricFamily("miner_shares_accepted", "Shares accepted", labels=["pool", "miner"])
        rejected = CounterMetricFamily("miner_shares_rejected", "Shares rejected", labels=["pool", "miner"])
        online = GaugeMetricFamily("miner_online", "1 while any of the miner's workers is online",
                                   labels=["pool", "miner"])
        self._read_ahead_selected(as_of)
        for (pool, miner), partition, names in self._selected:
            model = self.models.models.get(partition)
            if model is None:
                continue
            keys = [(pool, miner, w) for w in names if (pool, miner, w) in model.workers]
            if not keys:
                continue
            totals = sum_totals(lambda t, ks=keys, m=model: m.workers.totals_list(ks, t), as_of)
            for i, window in enumerate(WINDOWS):
                rate = hashrate_hs(totals.difficulty[i], totals.span_ms[i], model.multiplier)
                hashrate.add_metric([pool, miner, window], rate)
            counts = self._counters.get((pool, miner), [0, 0, 0])
            submitted.add_metric([pool, miner], counts[0])
            accepted.add_metric([pool, miner], counts[1])
            rejected.add_metric([pool, miner], counts[2])
            live_at = self.models.live_at_ms(partition, now_ms)
            is_online = any(model.liveness.is_online(k, live_at) for k in keys)
            online.add_metric([pool, miner], 1.0 if is_online else 0.0)
        yield from (hashrate, submitted, accepted, rejected, online)

    def _performance_families(self) -> Iterator[Metric]:
        families = [GaugeMetricFamily(name, doc, labels=["host"]) for name, doc in _PERFORMANCE_FAMILIES]
        for host, *values in self._performance:
            for family, value in zip(families, values, strict=True):
                if value is not None:
                    family.add_metric([host], value)
        yield from families


class _Collector(Collector):
    def __init__(self, exporter: MetricsExporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        return self._exporter.families()

    def describe(self) -> Iterator[Metric]:
        names = [
            ("pool_total_hashrate", "g"), ("pool_shares_per_second", "g"), ("pool_active_miners", "g"),
            ("pool_active_workers", "g"), ("pool_blocks_found", "c"), ("pool_uptime_seconds", "g"),
            ("miner_hashrate", "g"), ("miner_shares_submitted", "c"), ("miner_shares_accepted", "c"),
            ("miner_shares_rejected", "c"), ("miner_online", "g"),
            *((name, "g") for name, _ in _PERFORMANCE_FAMILIES),
        ]
        for name, kind in names:
            yield GaugeMetricFamily(name, "") if kind == "g" else CounterMetricFamily(name, "")
