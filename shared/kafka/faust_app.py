"""What the faust apps (the alerter, the notifier) share: broker credentials, dead letters.

The services' own clients get the Kafka security settings through
shared/kafka/options.py; a faust app needs the same in its own types, so it
connects to a SASL or TLS cluster like the aggregator does. A record a faust
agent cannot use becomes the same `DeadLetter` the aiokafka consumers make.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import faust
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError

from shared.background import spawn
from shared.backoff import Backoff
from shared.db.errors import DATABASE_ERRORS
from shared.kafka.deadletter import DeadLetter
from shared.kafka.faust_transport import Transport
from shared.kafka.options import KafkaClientError, client_options
from shared.kafka.topics import TopicSpec, topic_name
from shared.settings import ServiceSettings

__all__ = ["TICK", "TRANSIENT", "FaustRunner", "broker_credentials", "dead_letter", "make_app", "send_ticks",
           "until_done"]

log = logging.getLogger(__name__)

# A record that only says "time passed": tables change only inside a stream, so time-driven
# state changes (durations, group timers) travel as records to the partitions that own the state.
TICK: Final = b"\x00tick"

# What waiting cures: PostgreSQL or Kafka away or slow. Anything else is a bug and crashes.
TRANSIENT: Final = (*DATABASE_ERRORS, KafkaError, KafkaClientError, TimeoutError)


def broker_credentials(settings: ServiceSettings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    options = client_options(settings)
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism, ssl_context=options.get("ssl_context"))
    if protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    return None


def dead_letter(event: Any, reason: str, field: str, message: str) -> DeadLetter:
    """The dead letter of a faust event's record (`event.message`), with what was wrong with it."""
    m = event.message
    record = ConsumerRecord(m.topic, m.partition, m.offset, int(m.timestamp * 1000), 0, m.key, m.value, None,
                            len(m.key or b""), len(m.value or b""), list(m.headers or []))
    return DeadLetter(record, reason, [{"field": field, "message": message}])


async def until_done(what: str, attempt: Callable[[], Awaitable[object]], *, max_delay_s: float,
                     stopping: Callable[[], bool], failed: Callable[[], None]) -> None:
    """Run `attempt` until it succeeds, waiting out TRANSIENT errors (`failed` counts each).

    An agent does not move on (nor commit) before, so what it writes is never
    lost; an agent that raised would crash the whole faust app. While the app
    stops, the error is raised instead (the record is replayed after a restart)."""
    backoff = Backoff(0.1, max_delay_s)
    while True:
        try:
            await attempt()
            return
        except TRANSIENT as exc:
            if stopping():
                raise
            failed()
            delay = backoff.next()
            log.warning("%s not written (retrying in %.1fs): %r", what, delay, exc)
            await asyncio.sleep(delay)


class _App(faust.App):  # type: ignore[misc]  # faust is untyped
    def _new_transport(self) -> Transport:
        """faust's Kafka transport with its delivery bugs mended (faust_transport.py)."""
        return Transport(self.conf.broker_consumer, self)


def make_app(settings: ServiceSettings, *, app_id: str, data_dir: Path, session_timeout_s: float) -> faust.App:
    """A faust app as our services run them: raw bytes in and out (the codecs are ours), tables
    in memory and their changelogs, no web server of faust's own, a member that dies handing
    its partitions over after `session_timeout_s` (not faust's default minute), on the mended
    transport (faust_transport.py)."""
    return _App(
        topic_name(settings, app_id), broker=f"kafka://{settings.kafka_bootstrap_servers}",
        store="memory://", web_enabled=False, autodiscover=False, topic_partitions=settings.kafka_topic_partitions,
        # Topics faust makes itself (its assignor's leader topic) as replicated as ours.
        topic_replication_factor=settings.kafka_replication_factor,
        datadir=str(data_dir / "{conf.name}"),
        key_serializer="raw", value_serializer="raw", consumer_auto_offset_reset="earliest",
        broker_credentials=broker_credentials(settings), broker_commit_interval=0.5, producer_linger_ms=1,
        broker_session_timeout=session_timeout_s, broker_heartbeat_interval=min(3.0, session_timeout_s / 3),
    )


def own_topics(app: faust.App, partitions: int) -> list[TopicSpec]:
    """The app's own topics: its internal ones and its tables' changelogs (compacted), to create
    before the worker starts. faust declares them itself only after the group's first
    assignment, and that assignment ignores topics the broker does not know yet: on a fresh
    cluster the agents reading them got no partition until some later rebalance."""
    # The agents' channels: the app's topics are collected only as its agents start.
    channels = [agent.channel for agent in app.agents.values()]
    specs = [TopicSpec(name, channel.partitions or partitions)
             for channel in channels if getattr(channel, "internal", False)
             for name in channel.topics]
    for table in app.tables.values():
        changelog = table.changelog_topic
        specs.append(TopicSpec(changelog.get_topic_name(), changelog.partitions or partitions,
                               {"cleanup.policy": "compact"}))
    return specs


class _Worker(faust.Worker):  # type: ignore[misc]  # faust is untyped
    def install_signal_handlers(self) -> None:
        """None: the service owns SIGTERM and SIGINT (shared/entrypoint.py) and stops the worker
        itself, in order; faust's own handlers would replace them and leave the service waiting."""


class FaustRunner:
    """Owns a faust Worker inside the running event loop, between `start()` and `stop()`."""

    def __init__(self, app: faust.App, data_dir: Path, log_level: str, name: str) -> None:
        self.app = app
        self._data_dir = data_dir
        self._log_level = log_level
        self._name = name
        self._worker: Any = None
        self._run: asyncio.Task[Any] | None = None
        self.stopping = False

    async def start(self) -> None:
        if self._worker is not None:
            return
        self._data_dir.mkdir(parents=True, exist_ok=True)  # faust makes only its own folder
        self._worker = _Worker(self.app, loop=asyncio.get_running_loop(), quiet=True,
                                    loglevel=self._log_level, override_logging=False)
        self._run = spawn(self._worker.start(), self._name)  # a crash is logged when it happens

    async def ready(self) -> bool:
        """The worker runs, no rebalance is under way and its tables are recovered: what it
        holds is what it serves (for /readyz)."""
        app = self.app
        if self._worker is None or self.stopping or app.rebalancing or app.in_recovery:
            return False
        return bool(app.tables.recovery.completed.is_set())

    async def stop(self) -> None:
        """Safe to call twice."""
        self.stopping = True
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop()
        run, self._run = self._run, None
        if run is not None and not run.done():
            run.cancel()


async def send_ticks(app: faust.App, topic: Any) -> None:
    """A TICK to each partition of `topic` this worker holds. Kafka away: the ticks go out at the
    next call (time-driven changes come a tick late; nothing is lost)."""
    name = topic.get_topic_name()
    try:
        for tp in app.assignor.assigned_actives():
            if tp.topic == name:
                await topic.send(value=TICK, partition=tp.partition)
    except TRANSIENT as exc:
        log.warning("ticks not sent (retried at the next one): %r", exc)
