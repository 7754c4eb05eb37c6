"""Wires the ingest service: settings -> clients -> stores -> the API app's state.

The one place that knows which concrete adapter serves which port; routes
receive the `Container` through `request.app.state.container`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from prometheus_client import CollectorRegistry

from services.ingest.adapters.custom_metrics import CustomMetrics
from services.ingest.adapters.dashboards import DashboardStore
from services.ingest.adapters.event_sink import EventSink
from services.ingest.adapters.exposition import CachedExposition
from services.ingest.adapters.keys import ApiKeyStore, KeyAuthenticator
from services.ingest.adapters.live_feed import LiveFeed
from services.ingest.adapters.metrics_persister import MetricsPersister
from services.ingest.adapters.metrics_store import MetricsStore
from services.ingest.adapters.prometheus import PrometheusClient
from services.ingest.adapters.sessions import SessionStore
from services.ingest.adapters.stats import StatsReader
from services.ingest.config import IngestSettings
from services.ingest.domain.live import LiveHub, LiveLimits
from services.ingest.domain.ratelimit import AddressFailureLimiter, KeyRateLimiter
from services.ingest.telemetry import IngestTelemetry
from shared.db.pool import create_pool
from shared.http.auth import Gate
from shared.http.guard import BodyLimits
from shared.http.plugins import ApiPlugin, load_factory
from shared.lifecycle import StartedParts


@dataclass
class Container:
    settings: IngestSettings
    pool: asyncpg.Pool
    events: EventSink
    registry: CollectorRegistry
    telemetry: IngestTelemetry
    keys: ApiKeyStore
    authenticator: KeyAuthenticator
    rate_limiter: KeyRateLimiter
    gate: Gate
    exposition: CachedExposition
    custom_metrics: CustomMetrics
    metrics_store: MetricsStore
    metrics_persister: MetricsPersister
    dashboards: DashboardStore
    stats: StatsReader
    prometheus: PrometheusClient
    sessions: SessionStore
    # The console's live figures; the feed reads Kafka only while the console is enabled.
    live: LiveHub
    live_feed: LiveFeed | None
    plugins: list[ApiPlugin] = field(default_factory=list)
    _parts: StartedParts = field(default_factory=StartedParts)
    _pool_closed: bool = False

    async def start(self) -> None:
        """Start the parts that own connections or tasks, in dependency order.

        If one fails, those already started are stopped before the error propagates.
        """
        try:
            live = (self.live_feed,) if self.live_feed is not None else ()
            await self._parts.start((self.events, self.authenticator, self.metrics_persister,
                                     self.prometheus, *live, *self.plugins))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop in reverse order (the event sink, which flushes the producer, last); safe to call twice."""
        await self._parts.stop()
        if not self._pool_closed:
            self._pool_closed = True
            await self.pool.close()


def body_limits(settings: IngestSettings) -> BodyLimits:
    """Each route's body limit (docs/ingest-security.md); the OpenAPI document states them too."""
    dashboard_bytes = settings.max_dashboard_body_bytes
    return BodyLimits(
        default_bytes=settings.http_max_body_bytes,
        timeout_s=settings.http_body_timeout_s,
        by_route={
            ("POST", "/v1/events"): settings.max_body_bytes,
            ("POST", "/api/dashboards"): dashboard_bytes,
            ("PUT", "/api/dashboards/{dashboardId}"): dashboard_bytes,
            ("PATCH", "/api/dashboards/{dashboardId}"): dashboard_bytes,
        },
    )


async def bootstrap(settings: IngestSettings) -> Container:
    pool = await create_pool(settings)
    try:
        return _wire(settings, pool)
    except BaseException:
        await pool.close()
        raise


def _wire(settings: IngestSettings, pool: asyncpg.Pool) -> Container:
    registry = CollectorRegistry(auto_describe=True)
    telemetry = IngestTelemetry(registry)
    keys = ApiKeyStore(pool)
    authenticator = KeyAuthenticator(
        keys,
        cache_ttl_s=settings.api_key_cache_ttl_s,
        touch_interval_s=settings.api_key_touch_interval_s,
    )
    rate_limiter = KeyRateLimiter(default_per_second=settings.rate_limit_per_second,
                                  burst_s=settings.rate_limit_burst_s)
    sessions = SessionStore(pool, ttl_s=settings.console_session_ttl_s,
                            cache_ttl_s=settings.api_key_cache_ttl_s, on_used=authenticator.note_used)
    custom_metrics = CustomMetrics(max_series=settings.custom_metrics_max_series,
                                   max_series_per_key=settings.custom_metrics_max_series_per_key,
                                   series_ttl_s=settings.custom_metrics_series_ttl_s)
    registry.register(custom_metrics.collector())
    live = LiveHub(LiveLimits(max_streams=settings.live_max_streams,
                              max_streams_per_client=settings.live_max_streams_per_client,
                              queue_records=settings.live_queue_records, max_pools=settings.live_max_pools,
                              max_miners=settings.live_max_miners), telemetry)
    telemetry.watch_live_streams(lambda: live.open_streams)
    return Container(
        settings=settings,
        pool=pool,
        # Never fails to start when Kafka is down: POST /v1/events answers 503
        # and /readyz says not ready until the broker answers again.
        events=EventSink(settings, telemetry),
        registry=registry,
        telemetry=telemetry,
        keys=keys,
        authenticator=authenticator,
        rate_limiter=rate_limiter,
        gate=Gate(
            authenticator=authenticator,
            key_limiter=rate_limiter,
            failure_limiter=AddressFailureLimiter(per_second=settings.auth_failures_per_second,
                                                  burst=settings.auth_failures_burst),
            observer=telemetry,
            # The console's cookie stands in for the Authorization header (docs/console.md).
            sessions=sessions if settings.console_enabled else None,
        ),
        exposition=CachedExposition(registry, ttl_s=settings.metrics_cache_s),
        custom_metrics=custom_metrics,
        metrics_store=MetricsStore(pool),
        metrics_persister=MetricsPersister(settings, MetricsStore(pool), telemetry),
        dashboards=DashboardStore(pool),
        stats=StatsReader(pool, hashrate_multiplier=settings.hashrate_multiplier),
        prometheus=PrometheusClient(settings.prometheus_url),
        sessions=sessions,
        live=live,
        live_feed=(LiveFeed(settings, live, telemetry, max_backoff_s=settings.kafka_reconnect_max_backoff_s,
                             partitions_check_s=settings.live_partitions_check_s)
                   if settings.console_enabled else None),
        plugins=[load_factory(spec)(settings, pool) for spec in settings.api_plugins],
    )
