"""Wires the alerter: the one place that picks concrete adapters.

settings -> PostgreSQL pool -> the alert store, the rule store, the outbox
relay (with the producer it shares with the dead letters) -> the engine ->
the faust app (streams.py) -> /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from shared.db.pool import create_pool
from shared.http.embedded import EmbeddedHttpServer
from shared.http.metrics_app import metrics_app
from shared.kafka.deadletter import DeadLetterProducer
from shared.kafka.faust_app import own_topics
from shared.kafka.producer import EventProducer
from shared.kafka.topics import ensure_topics
from shared.lifecycle import StartedParts

from .adapters.alert_store import AlertChange, AlertStore, write_groups
from .adapters.relay import AlertRelay
from .adapters.rule_store import RuleStore
from .config import AlerterSettings
from .domain.lifecycle import GroupState
from .engine import Engine, RuleChanges
from .streams import AlerterStreams
from .telemetry import AlerterTelemetry, render

__all__ = ["Alerter", "bootstrap"]


class RuleSource:
    """The rules in force, read back from PostgreSQL only when they changed."""

    def __init__(self, store: RuleStore, engine: Engine, telemetry: AlerterTelemetry) -> None:
        self._store = store
        self._engine = engine
        self._telemetry = telemetry
        self._seen: object = None

    async def load(self) -> RuleChanges | None:
        state = await self._store.state()
        if state == self._seen:
            return None
        changes = self._engine.set_rules(await self._store.all())
        self._seen = state
        self._telemetry.rules.set(len(self._engine.rules))
        return changes


@dataclass
class Alerter:
    settings: AlerterSettings
    pool: asyncpg.Pool
    producer: EventProducer
    relay: AlertRelay
    rules: RuleSource
    streams: AlerterStreams
    http: EmbeddedHttpServer
    telemetry: AlerterTelemetry
    _parts: StartedParts = field(default_factory=StartedParts)
    _closed: bool = False

    async def start(self) -> None:
        try:
            # its own topics too: faust's first assignment would ignore them while missing
            await ensure_topics(self.settings, extra=own_topics(self.streams.app, self.settings.kafka_topic_partitions))
            await self._parts.start((self.producer, self.relay))
            await self.rules.load()
            await self._parts.start((self.streams, self.http))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """The streams first (their last transitions are stored), then the relay publishes
        what it can, then the producer flushes. Safe to call twice."""
        await self._parts.stop()
        if not self._closed:
            self._closed = True
            await self.pool.close()


async def bootstrap(settings: AlerterSettings) -> Alerter:
    pool = await create_pool(settings)
    try:
        producer = EventProducer(settings, client_id="alerter")
        alerts = AlertStore(pool, timeout_s=settings.alerter_db_timeout_s)
        relay = AlertRelay(settings, pool, producer)
        telemetry = AlerterTelemetry()
        engine = Engine(stale_after_ms=int(settings.alerter_stale_after_s * 1000))
        rules = RuleSource(RuleStore(pool, timeout_s=settings.alerter_db_timeout_s), engine, telemetry)
        dead_letters = DeadLetterProducer(producer, settings)

        async def apply_changes(changes: list[AlertChange]) -> int:
            written = await alerts.apply(changes)
            if written:
                relay.poke()
            return written

        async def groups_behind(states: list[GroupState]) -> None:
            await write_groups(pool, states, timeout_s=settings.alerter_db_timeout_s)

        streams = AlerterStreams(settings, engine, telemetry, apply_changes=apply_changes,
                                 dead_letters=dead_letters.send, write_groups=groups_behind, load_rules=rules.load)

        def exposition() -> bytes:
            telemetry.published.set(relay.published)
            return render(telemetry.registry)

        http = EmbeddedHttpServer(metrics_app("Chimera alerter", exposition, streams.ready), settings.metrics_host,
                                  settings.metrics_port)
        return Alerter(settings, pool, producer, relay, rules, streams, http, telemetry)
    except BaseException:
        await pool.close()
        raise
