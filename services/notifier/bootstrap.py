"""Wires the notifier: the one place that picks concrete adapters.

settings -> PostgreSQL pool -> the secret box, the channel, silence and
delivery-log stores -> the directory (what is read back every second) ->
the senders and the dispatcher -> the faust app (streams.py) -> /metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from prometheus_client import generate_latest

from shared.db.pool import create_pool
from shared.http.embedded import EmbeddedHttpServer
from shared.http.metrics_app import metrics_app
from shared.kafka.deadletter import DeadLetterProducer
from shared.kafka.faust_app import own_topics
from shared.kafka.producer import EventProducer, OutgoingRecord
from shared.kafka.topics import Topic, ensure_topics, topic_name
from shared.lifecycle import StartedParts

from .adapters.channel_store import Channel, ChannelStore
from .adapters.delivery_log import DeliveryLog
from .adapters.heard_alerts import HeardAlerts
from .adapters.inhibit_rules import load_inhibit_rules
from .adapters.secrets import SecretBox
from .adapters.senders import Senders
from .adapters.silence_store import SilenceStore
from .config import NotifierSettings
from .directory import Destination, Directory, Loaders
from .dispatch import Dispatcher
from .domain.delivery import RetryPolicy
from .domain.matchers import MatcherError
from .domain.routing import Silence
from .streams import NotifierStreams
from .telemetry import NotifierTelemetry

__all__ = ["Notifier", "bootstrap"]

log = logging.getLogger(__name__)


def destinations(channels: list[Channel]) -> list[Destination]:
    """The enabled channels that can send (a channel whose matchers or secrets are unusable is logged, left out)."""
    out = []
    for channel in channels:
        if not channel.enabled:
            continue
        try:
            route = channel.route()
        except MatcherError as exc:
            log.error("channel %d (%s) is left out: %s", channel.id, channel.name, exc)
            continue
        out.append(Destination(channel.id, channel.name, channel.type, channel.full_config(), route,
                               channel.rate_limit_per_minute))
    return out


@dataclass
class Notifier:
    settings: NotifierSettings
    pool: asyncpg.Pool
    producer: EventProducer
    senders: Senders
    directory: Directory
    dispatcher: Dispatcher
    streams: NotifierStreams
    http: EmbeddedHttpServer
    telemetry: NotifierTelemetry
    _parts: StartedParts = field(default_factory=StartedParts)
    _closed: bool = False

    async def start(self) -> None:
        try:
            # its own topics too: faust's first assignment would ignore them while missing
            await ensure_topics(self.settings, extra=own_topics(self.streams.app, self.settings.kafka_topic_partitions))
            await self._parts.start((self.producer, self.senders))
            await self.directory.reload()  # no record is routed before the channels are known
            await self._parts.start((self.dispatcher, self.streams, self.http))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """The web server, the streams (their flushes are stored), the dispatcher (a send in
        flight is sent again after its lease), the senders, the producer. Safe to call twice."""
        await self._parts.stop()
        if not self._closed:
            self._closed = True
            await self.pool.close()


async def bootstrap(settings: NotifierSettings) -> Notifier:
    rules = load_inhibit_rules(settings.notifier_inhibit_rules_file)  # a bad file fails the start
    box = SecretBox.from_settings(settings)
    pool = await create_pool(settings)
    try:
        timeout_s = settings.notifier_db_timeout_s
        producer = EventProducer(settings, client_id="notifier")
        telemetry = NotifierTelemetry()
        channels = ChannelStore(pool, box, timeout_s=timeout_s)
        silences = SilenceStore(pool, timeout_s=timeout_s)
        heard = HeardAlerts(pool, timeout_s=timeout_s)
        delivery_log = DeliveryLog(pool, timeout_s=timeout_s)

        async def load_destinations() -> list[Destination]:
            return destinations(await channels.all_for_sending())

        async def load_silences() -> list[Silence]:
            return await silences.active_and_future(datetime.now(UTC))

        directory = Directory(Loaders(channels.state, load_destinations, load_silences, heard.firing), rules)
        senders = Senders(allowed=settings.allowed_networks, timeout_s=settings.notifier_send_timeout_s,
                          max_response_bytes=settings.notifier_max_response_bytes)
        dead_topic = topic_name(settings, Topic.NOTIFICATIONS_DEAD)

        async def publish_dead(records: list[tuple[bytes, bytes]]) -> None:
            await producer.send_batch([OutgoingRecord(dead_topic, key, value) for key, value in records])

        policy = RetryPolicy(settings.notifier_max_attempts, settings.notifier_backoff_initial_s,
                             max(settings.notifier_backoff_max_s, settings.notifier_backoff_initial_s),
                             settings.notifier_retry_after_max_s)
        dispatcher = Dispatcher(
            delivery_log, lambda channel_id: directory.channels.get(channel_id), senders, policy, telemetry, publish_dead,
            default_rate_per_minute=settings.notifier_rate_limit_per_minute,
            concurrency=settings.notifier_send_concurrency, lease_s=settings.notifier_send_timeout_s * 2 + 10)
        streams = NotifierStreams(settings, directory, telemetry, record_flushes=delivery_log.record_flushes,
                                  note_alerts=heard.note, dead_letters=DeadLetterProducer(producer, settings).send,
                                  flushed=dispatcher.poke)
        async def ready() -> bool:
            return directory.loaded and await streams.ready()

        http = EmbeddedHttpServer(metrics_app("Chimera notifier", lambda: generate_latest(telemetry.registry), ready),
                                  settings.metrics_host, settings.metrics_port)
        return Notifier(settings, pool, producer, senders, directory, dispatcher, streams, http, telemetry)
    except BaseException:
        await pool.close()
        raise

