"""The notifier as a faust-streaming app: agents, a table and timers around the pure domain.

    chimera.alerts ──> (agent: check the record, note it in notifier_alerts,
                        route it: one item per channel that hears it)
                   ──> chimera.notifier-groups, keyed by group key
                        (agent: the group's state in the `groups` table;
                         tick records flush the groups that are due)
    timer (NOTIFIER_TICK_S): a tick record to each groups partition this worker
                        holds: group_wait, group_interval and repeat_interval
                        come due inside the stream
    timer (NOTIFIER_RELOAD_S): channels, silences and firing alerts read back

A flush stores its notification in the delivery log under its idempotency
key (group key and sequence) before the table changes and before the stream
commits: replayed after a crash, the same flush finds the stored row and the
group is told what that row said. The dispatcher sends what the log holds.
Why an internal topic: a group (say, "pool main on channel ops") gathers
alerts from every input partition, so its state lives on exactly one worker
and moves with its partition in a rebalance (the table's changelog).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from shared.clock import now_ms
from shared.kafka.deadletter import DeadLetter
from shared.kafka.faust_app import TICK, TRANSIENT, FaustRunner, dead_letter, make_app, send_ticks, until_done
from shared.kafka.topics import Topic, topic_name

from .adapters.codec import RoutedAlert, decode_group, decode_routed, encode_group, encode_routed
from .adapters.delivery_log import NewDelivery
from .config import NotifierSettings
from .directory import Destination, Directory
from .domain.grouping import Flush, GroupedAlert, NotificationGroup, add, flush
from .domain.messages import AlertView, build_group_message, message_to_json
from .domain.routing import group_of
from .telemetry import NotifierTelemetry

__all__ = ["GROUPS", "NotifierStreams"]

log = logging.getLogger(__name__)

GROUPS: Final = "chimera.notifier-groups"
_ALERT_BATCH: Final = 500
_ALERT_BATCH_WITHIN_S: Final = 0.005

StoredTold = dict[str, frozenset[str]]  # idempotency key -> what the stored notification told
RecordFlushes = Callable[[list[NewDelivery]], Awaitable[StoredTold]]
NoteAlerts = Callable[[list[AlertView]], Awaitable[None]]
SendDeadLetters = Callable[[list[DeadLetter]], Awaitable[None]]


def _view(record: Mapping[str, Any]) -> AlertView:
    url = record.get("generator_url")
    return AlertView.from_record(record, generator_url=url if isinstance(url, str) else "")


class NotifierStreams:
    def __init__(self, settings: NotifierSettings, directory: Directory, telemetry: NotifierTelemetry, *,
                 record_flushes: RecordFlushes, note_alerts: NoteAlerts, dead_letters: SendDeadLetters,
                 flushed: Callable[[], None]) -> None:
        self.settings = settings
        self.directory = directory
        self.telemetry = telemetry
        self._record_flushes = record_flushes
        self._note_alerts = note_alerts
        self._dead_letters = dead_letters
        self._flushed = flushed
        app = self.app = make_app(settings, app_id=settings.notifier_group_id, data_dir=settings.notifier_data_dir,
                                  session_timeout_s=settings.notifier_session_timeout_s)
        self._runner = FaustRunner(app, settings.notifier_data_dir, settings.log_level, "notifier-faust")
        raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
        partitions = settings.kafka_topic_partitions
        self.alerts = app.topic(topic_name(settings, Topic.ALERTS), **raw)
        self.routed = app.topic(topic_name(settings, GROUPS), partitions=partitions, internal=True, **raw)
        self.groups = app.Table("groups", default=None, partitions=partitions, **raw)
        app.agent(self.alerts, name="alerts")(self._alert_agent)
        app.agent(self.routed, name="groups")(self._group_agent)
        app.timer(settings.notifier_tick_s, name="tick")(self._tick)
        app.timer(settings.notifier_reload_s, name="reload")(self._reload)
        app.on_partitions_revoked.connect(self._on_revoked)
        # partition -> heap of (when due, group key): entries of groups since changed are skipped
        self._due: dict[int, list[tuple[int, bytes]]] = {}
        self._open: dict[int, set[bytes]] = {}  # partition -> its groups, for the gauge

    async def start(self) -> None:
        await self._runner.start()

    async def stop(self) -> None:
        await self._runner.stop()

    async def ready(self) -> bool:
        return await self._runner.ready()

    # --- chimera.alerts: check, note, route ----------------------------------------------

    async def _alert_agent(self, stream: Any) -> None:
        # In batches: the records are noted in one transaction (a commit per record cost a WAL
        # flush each: a fifth of the rate). faust acks a batch's offsets only after it is handled.
        async for events in stream.take_events(_ALERT_BATCH, within=_ALERT_BATCH_WITHIN_S):
            await self._alerts(events, now_ms())

    async def _alerts(self, events: list[Any], received: int) -> None:
        letters: list[DeadLetter] = []
        heard: list[tuple[AlertView, dict[str, Any]]] = []
        for event in events:
            try:
                record = orjson.loads(event.value) if event.value is not None else None
                heard.append((_view(record), record))  # type: ignore[arg-type]
            except (orjson.JSONDecodeError, ValueError) as exc:
                letters.append(dead_letter(event, "invalid alert record", "value", str(exc)[:500]))
        if letters:
            self.telemetry.records.labels("dead_letter").inc(len(letters))
            await self._retry("dead letters", lambda: self._dead_letters(letters))
        await self._retry("alerts", lambda: self._note_alerts([view for view, _ in heard]))
        for view, record in heard:
            routes = self.directory.routes_for(view.labels)
            for route in routes:
                key, labels = group_of(route, view.labels)
                item = RoutedAlert(route.channel_id, labels, record, received)
                await self.routed.send(key=key.encode(), value=encode_routed(item))
            self.telemetry.records.labels("routed" if routes else "unrouted").inc()

    # --- the groups ------------------------------------------------------------------------

    async def _group_agent(self, stream: Any) -> None:
        async for event in stream.events():
            partition = event.message.partition
            if event.value == TICK:
                await self._tick_partition(partition)
                continue
            await self._take(event.key, decode_routed(event.value), partition)

    async def _take(self, key: bytes, item: RoutedAlert, partition: int) -> None:
        view = _view(item.record)
        raw = self.groups.get(key)
        group = decode_group(raw)[0] if raw is not None else None
        if group is None:
            destination = self.directory.channels.get(item.channel_id)
            if destination is None:
                return  # the channel went away between routing and here
            group = NotificationGroup.new(key.decode(), destination.route, item.group_labels, now_ms())
        alert = GroupedAlert(view.fingerprint, view.status, view.starts_at, view.labels, item.record, item.received_ms)
        if add(group, alert) or raw is None:
            self._keep(key, group, partition)

    def _keep(self, key: bytes, group: NotificationGroup, partition: int) -> None:
        self.groups[key] = encode_group(group, partition)
        heapq.heappush(self._heap(partition), (group.next_flush_ms, key))
        self._open.setdefault(partition, set()).add(key)

    def _heap(self, partition: int) -> list[tuple[int, bytes]]:
        heap = self._due.get(partition)
        if heap is None:  # after a start or a rebalance: the partition's groups, from the table
            heap = self._due[partition] = []
            keys = self._open.setdefault(partition, set())
            for key, raw in self.groups.items():
                group, where = decode_group(raw)
                if where == partition:
                    heap.append((group.next_flush_ms, key))
                    keys.add(key)
            heapq.heapify(heap)
        return heap

    async def _tick_partition(self, partition: int) -> None:
        """Flush the partition's groups that are due; their notifications are stored together."""
        heap = self._heap(partition)
        now = now_ms()
        due: dict[bytes, None] = {}
        while heap and heap[0][0] <= now:
            due[heapq.heappop(heap)[1]] = None
        made: list[tuple[bytes, NotificationGroup, Flush, dict[str, str], NewDelivery]] = []
        for key in due:
            raw = self.groups.get(key)
            if raw is None:
                continue
            group = decode_group(raw)[0]
            if group.next_flush_ms > now:
                continue  # rescheduled since that heap entry; a later entry has its time
            destination = self.directory.channels.get(group.channel_id)
            if destination is None:  # deleted or disabled: its groups end
                self._drop(key, partition)
                continue
            told_before = dict(group.told)
            notice = flush(group, destination.route, now, lambda labels: self._muted(labels, now))
            if notice is None:
                self._settle(key, group, partition)
                continue
            made.append((key, group, notice, told_before, self._delivery(destination, group, notice, now)))
        if not made:
            return
        stored = await self._retry_value("notifications", lambda: self._record_flushes([m[4] for m in made]))
        for key, group, notice, told_before, delivery in made:
            told = stored.get(delivery.idempotency_key, frozenset(delivery.told))
            for alert in notice.firing:  # replayed: people were told what the stored one said
                if f"{alert.fingerprint}@{alert.starts_at}" not in told:
                    if alert.fingerprint in told_before:
                        group.told[alert.fingerprint] = told_before[alert.fingerprint]
                    else:
                        group.told.pop(alert.fingerprint, None)
            self._settle(key, group, partition)
        self.telemetry.flushes.inc(len(made))
        self._flushed()

    def _settle(self, key: bytes, group: NotificationGroup, partition: int) -> None:
        if group.empty:
            self._drop(key, partition)
        else:
            self._keep(key, group, partition)

    def _delivery(self, destination: Destination, group: NotificationGroup, notice: Flush, now: int) -> NewDelivery:
        alerts = notice.alerts
        views = [_view(a.record) for a in alerts]
        message = build_group_message(destination.name, group.key, group.labels, views,
                                      max_alerts=destination.max_alerts,
                                      external_url=self.settings.notifier_external_url)
        ids = [a.record.get("alert_id") for a in alerts]
        return NewDelivery(
            idempotency_key=notice.idempotency_key, channel_id=destination.id, group_key=group.key,
            sequence=notice.sequence, message=message_to_json(message), fingerprints=[a.fingerprint for a in alerts],
            told=[f"{a.fingerprint}@{a.starts_at}" for a in notice.firing],
            alert_ids=[i for i in ids if isinstance(i, int) and not isinstance(i, bool)],
            received_at=datetime.fromtimestamp((notice.changed_since_ms or now) / 1000, UTC))

    def _muted(self, labels: Mapping[str, str], now: int) -> bool:
        why = self.directory.muted(labels, now)
        if why is not None:
            self.telemetry.muted.labels(why).inc()
        return why is not None

    def _drop(self, key: bytes, partition: int) -> None:
        if self.groups.get(key) is not None:
            del self.groups[key]
        self._open.get(partition, set()).discard(key)

    def _on_revoked(self, sender: Any, revoked: Iterable[Any], **_: Any) -> None:
        for tp in revoked:
            if tp.topic == self.routed.get_topic_name():
                self._due.pop(tp.partition, None)
                self._open.pop(tp.partition, None)

    # --- writes that must land -------------------------------------------------------------

    async def _retry(self, what: str, attempt: Callable[[], Awaitable[object]]) -> None:
        await until_done(what, attempt, max_delay_s=self.settings.notifier_retry_max_s,
                         stopping=lambda: self._runner.stopping, failed=self.telemetry.store_failures.inc)

    async def _retry_value(self, what: str, attempt: Callable[[], Awaitable[StoredTold]]) -> StoredTold:
        box: list[StoredTold] = []

        async def once() -> None:
            box.append(await attempt())

        await self._retry(what, once)
        return box[-1]

    # --- timers ------------------------------------------------------------------------------

    async def _tick(self) -> None:
        await send_ticks(self.app, self.routed)
        self.telemetry.groups.set(sum(len(keys) for keys in self._open.values()))

    async def _reload(self) -> None:
        # A timer that raises crashes the whole faust app: PostgreSQL away is only a late reload.
        try:
            await self.directory.reload()
        except TRANSIENT as exc:
            log.warning("channels and silences not reloaded (PostgreSQL?), retrying: %r", exc)
            return
        self.telemetry.channels.set(len(self.directory.channels))
        self.telemetry.silences.set(sum(1 for s in self.directory.silences if s.active(now_ms())))
