"""The live feed's Kafka side: the snapshot and alert topics, read into the live hub.

One consumer per ingest process, with no consumer group: every process serves
its own pages, so each reads every partition (assigned, not subscribed) and
keeps no offsets. At start it seeks the snapshot topic to six minutes ago: the
aggregator re-publishes every worker and miner at least every five minutes
(docs/aggregator.md "Snapshot topic"), so one sweep later the hub knows every
entity; alerts from one minute ago, so a page opened now still sees a
transition that just happened. After a Kafka error the consumer is rebuilt
and positioned the same way (records seen twice only refresh the same keys).
Every LIVE_PARTITIONS_CHECK_S it asks the broker for partitions added to either
topic and reads those from their beginning.

Kafka away at start does not stop the service: the feed retries with backoff
and the pages get figures once it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.ingest.domain.live import LiveHub, RecordSource
from shared.background import cancel_and_wait, spawn
from shared.backoff import Backoff
from shared.kafka.options import client_options
from shared.kafka.topics import Topic, topic_name
from shared.settings import ServiceSettings

__all__ = ["ALERT_LOOKBACK_S", "SNAPSHOT_LOOKBACK_S", "FeedObserver", "LiveFeed"]

log = logging.getLogger(__name__)

# One full sweep of the aggregator (5 min) plus a minute for ticks in flight.
SNAPSHOT_LOOKBACK_S: Final = 6 * 60
ALERT_LOOKBACK_S: Final = 60
_POLL_MS: Final = 1_000
_MAX_RECORDS: Final = 2_000  # per poll: bounds how long one pass holds the event loop


class FeedObserver(Protocol):
    def feed_records(self, source: RecordSource, records: int) -> None: ...

    def feed_failed(self) -> None:
        """A Kafka error: the consumer is rebuilt after a backoff."""

    def feed_crashed(self) -> None:
        """The feed's task ended with an unexpected error: no more live figures until a restart."""


class _TopicMissing(Exception):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic} has no partitions yet")


class LiveFeed:
    def __init__(self, settings: ServiceSettings, hub: LiveHub, observer: FeedObserver, *,
                 max_backoff_s: float = 10.0, partitions_check_s: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._partitions_check_s = partitions_check_s
        self._hub = hub
        self._observer = observer
        self._max_backoff_s = max_backoff_s
        self._clock = clock
        self.snapshot_topic = topic_name(settings, Topic.SNAPSHOTS)
        self.alert_topic = topic_name(settings, Topic.ALERTS)
        self._task: asyncio.Task[None] | None = None
        # True once the consumer is assigned and positioned (tests and logs use it).
        self.positioned = False

    async def start(self) -> None:
        if self._task is None:
            self._task = spawn(self._run(), "ingest-live-feed")
            self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Stop reading and end every open stream; safe twice."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._hub.close()

    def _ended(self, task: asyncio.Task[None]) -> None:
        # spawn() logs the crash itself; this makes it a metric an alert can watch.
        if not task.cancelled() and task.exception() is not None:
            self._observer.feed_crashed()

    async def _run(self) -> None:
        backoff = Backoff(0.5, self._max_backoff_s)
        while True:
            consumer = AIOKafkaConsumer(**client_options(self._settings), group_id=None,
                                        enable_auto_commit=False, auto_offset_reset="latest",
                                        client_id="chimera-ingest-live")
            try:
                await consumer.start()
                await self._position(consumer)
                backoff.reset()
                await self._read(consumer)
            except (KafkaError, _TopicMissing) as exc:
                self.positioned = False
                self._observer.feed_failed()
                delay = backoff.next()
                log.warning("live feed: %r; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
            finally:
                await consumer.stop()

    async def _partitions(self) -> dict[str, list[TopicPartition]]:
        """Every partition of both topics, as the broker describes them now (a consumer's own
        metadata knows only the topics it already reads)."""
        admin = AIOKafkaAdminClient(**client_options(self._settings), client_id="chimera-ingest-live")
        try:
            await admin.start()
            described = await admin.describe_topics([self.snapshot_topic, self.alert_topic])
        finally:
            await admin.close()
        found: dict[str, list[TopicPartition]] = {}
        for topic in described:
            partitions = sorted(p["partition"] for p in topic["partitions"]) if topic["error_code"] == 0 else []
            found[topic["topic"]] = [TopicPartition(topic["topic"], p) for p in partitions]
        for name in (self.snapshot_topic, self.alert_topic):
            if not found.get(name):
                raise _TopicMissing(name)
        return found

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        partitions = await self._partitions()
        snapshots, alerts = partitions[self.snapshot_topic], partitions[self.alert_topic]
        consumer.assign([*snapshots, *alerts])
        now_ms = int(self._clock() * 1000)
        since = {tp: now_ms - SNAPSHOT_LOOKBACK_S * 1000 for tp in snapshots}
        since.update({tp: now_ms - ALERT_LOOKBACK_S * 1000 for tp in alerts})
        # Where a partition with nothing that recent resumes: its end, taken BEFORE the search, so a
        # record written in between is either found by it or after this end. A concrete offset, not
        # seek_to_end(), whose lazy reset would skip records written before the first fetch.
        ends: dict[TopicPartition, int] = await consumer.end_offsets(list(since))
        found: dict[TopicPartition, Any] = await consumer.offsets_for_times(since)
        for tp in since:
            at = found.get(tp)
            consumer.seek(tp, ends[tp] if at is None else at.offset)
        self.positioned = True
        log.info("live feed reading %s and %s", self.snapshot_topic, self.alert_topic)

    async def _take_new_partitions(self, consumer: AIOKafkaConsumer) -> None:
        """Partitions added to a topic since the feed positioned itself (the pool scaled out):
        read from their beginning, since all they hold is newer than the feed's start; the
        partitions already read keep their positions (assign() would forget them)."""
        wanted = {tp for tps in (await self._partitions()).values() for tp in tps}
        current = consumer.assignment()
        new = wanted - current
        if not new:
            return
        positions = {tp: await consumer.position(tp) for tp in current}
        starts: dict[TopicPartition, int] = await consumer.beginning_offsets(list(new))
        consumer.assign([*current, *new])
        for tp, offset in (positions | starts).items():
            consumer.seek(tp, offset)
        log.info("live feed reading %d more partitions: %s", len(new), sorted(map(str, new)))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        checked_s = time.monotonic()
        while True:
            if time.monotonic() - checked_s >= self._partitions_check_s:
                checked_s = time.monotonic()
                await self._take_new_partitions(consumer)
            batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=_MAX_RECORDS)
            for tp, records in batches.items():
                is_alert = tp.topic == self.alert_topic
                accept = self._hub.accept_alert if is_alert else self._hub.accept_snapshot
                for record in records:
                    # A tombstone (no value) is not a record either topic documents: malformed.
                    accept(record.value if record.value is not None else b"")
                self._observer.feed_records(RecordSource.ALERT if is_alert else RecordSource.SNAPSHOT,
                                            len(records))
