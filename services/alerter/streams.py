"""The alerter as a faust-streaming app: agents, tables, timers around the engine.

    chimera.snapshots ─┐  (agent: decode, keep the latest record per key, evaluate)
    pool.metrics ──────┴─> chimera.alerter-observations, keyed by fingerprint
                            (agent: the group's state in the `groups` table, stepped;
                             transitions to PostgreSQL, then the table)
    timer (ALERTER_TICK_S): a tick record to each observations partition this worker
                            holds, so time moves alerts inside the stream (durations
                            completing, stale series, keep_firing_for, rules gone)
    timer (ALERTER_RULES_RELOAD_S): rules read back when they changed; new rules and
                            rules that read something else now are evaluated over the
                            latest records at once

Why an internal topic: a group (say, "workers offline in pool main") gathers
series from every input partition, so its state lives where its
fingerprint's partition is, on exactly one worker of the group, and moves
with it in a rebalance (the table's changelog). Tables can only change
inside a stream, hence ticks as records.

Transitions are written to PostgreSQL before the table changes and before
the stream commits; a crash in between replays the observation, which makes
the identical transition, which the store drops (alert_store.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from shared.clock import now_ms
from shared.kafka.deadletter import DeadLetter
from shared.kafka.faust_app import TICK, TRANSIENT, FaustRunner, dead_letter, make_app, send_ticks, until_done
from shared.kafka.topics import Topic, topic_name

from .adapters.alert_store import AlertChange
from .adapters.codec import (
    decode_observation,
    decode_record,
    decode_state,
    encode_observation,
    encode_record,
    encode_state,
)
from .adapters.sources import BadRecord, decode_metric, decode_snapshot
from .config import AlerterSettings
from .domain.lifecycle import GroupState, Transition
from .domain.records import Record
from .engine import Engine, RuleChanges
from .telemetry import AlerterTelemetry

__all__ = ["OBSERVATIONS", "AlerterStreams"]

log = logging.getLogger(__name__)

OBSERVATIONS: Final = "chimera.alerter-observations"

ApplyChanges = Callable[[list[AlertChange]], Awaitable[int]]
WriteGroups = Callable[[list[GroupState]], Awaitable[None]]
SendDeadLetters = Callable[[list[DeadLetter]], Awaitable[None]]


class AlerterStreams:
    def __init__(self, settings: AlerterSettings, engine: Engine, telemetry: AlerterTelemetry, *,
                 apply_changes: ApplyChanges, dead_letters: SendDeadLetters, write_groups: WriteGroups,
                 load_rules: Callable[[], Awaitable[RuleChanges | None]]) -> None:
        self.settings = settings
        self.engine = engine
        self.telemetry = telemetry
        self._apply_changes = apply_changes
        self._write_groups = write_groups
        self._dead_letters = dead_letters
        self._load_rules = load_rules
        partitions = settings.kafka_topic_partitions
        app = self.app = make_app(settings, app_id=settings.alerter_group_id, data_dir=settings.alerter_data_dir,
                                  session_timeout_s=settings.alerter_session_timeout_s)
        self._runner = FaustRunner(app, settings.alerter_data_dir, settings.log_level, "alerter-faust")
        raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
        self.snapshots = app.topic(topic_name(settings, Topic.SNAPSHOTS), **raw)
        self.metrics = app.topic(topic_name(settings, Topic.METRICS), **raw)
        self.observations = app.topic(topic_name(settings, OBSERVATIONS), partitions=partitions, internal=True,
                                      **raw)
        self.groups = app.Table("groups", default=None, partitions=partitions, **raw)
        self.latest = app.Table("series", default=None, partitions=partitions, **raw)
        self.latest_metrics = app.Table("metric-series", default=None, partitions=partitions, **raw)
        app.agent(self.snapshots, name="snapshots")(self._snapshot_agent)
        app.agent(self.metrics, name="metrics")(self._metric_agent)
        app.agent(self.observations, name="groups")(self._group_agent)
        app.timer(settings.alerter_tick_s, name="tick")(self._tick)
        app.timer(settings.alerter_rules_reload_s, name="rules")(self._reload)
        app.on_partitions_revoked.connect(self._on_revoked)
        # partition -> the groups not inactive -> (status, severity), for ticks and the alerts gauge
        self._active: dict[int, dict[bytes, tuple[str, str]]] = {}
        self._dirty: dict[int, set[bytes]] = {}  # partition -> groups changed since written behind

    # --- lifecycle (the faust worker inside this event loop) ---------------------------

    async def start(self) -> None:
        await self._runner.start()

    async def stop(self) -> None:
        await self._runner.stop()

    async def ready(self) -> bool:
        return await self._runner.ready()

    # --- the input agents ------------------------------------------------------------------

    async def _snapshot_agent(self, stream: Any) -> None:
        async for event in stream.events():
            await self._evaluate(event, Topic.SNAPSHOTS, decode_snapshot, self.latest)

    async def _metric_agent(self, stream: Any) -> None:
        async for event in stream.events():
            await self._evaluate(event, Topic.METRICS, decode_metric, self.latest_metrics)

    async def _evaluate(self, event: Any, source: str, decode: Callable[[bytes | None], Record | None],
                        latest: Any) -> None:
        began = time.perf_counter()
        try:
            record = decode(event.value)
        except BadRecord as exc:
            self.telemetry.records.labels(source, "dead_letter").inc()
            letter = dead_letter(event, "invalid record", exc.field, exc.message)
            await self._retry("dead letter", lambda: self._dead_letters([letter]))
            return
        if record is None:
            self.telemetry.records.labels(source, "ignored").inc()
            return
        latest[record.key.encode()] = encode_record(record)
        observations = self.engine.observations(record)
        for obs in observations:
            await self.observations.send(key=obs.fingerprint.encode(), value=encode_observation(obs))
        self.telemetry.records.labels(source, "evaluated").inc()
        self.telemetry.observations.inc(len(observations))
        self.telemetry.evaluation_s.observe(time.perf_counter() - began)

    # --- the group agent ---------------------------------------------------------------------

    async def _group_agent(self, stream: Any) -> None:
        async for event in stream.events():
            partition = event.message.partition
            if event.value == TICK:
                await self._tick_partition(partition)
                continue
            obs = decode_observation(event.value)
            raw = self.groups.get(event.key)
            state = decode_state(raw)[0] if raw is not None else None
            state, made = self.engine.apply(state, obs, obs.reading.at_ms)
            await self._record(made)
            self._keep(event.key, state, partition)
            self.telemetry.evaluation_lag_s.observe(max(now_ms() - obs.reading.at_ms, 0) / 1000)

    async def _tick_partition(self, partition: int) -> None:
        began = time.perf_counter()
        active = self._active_in(partition)
        now = now_ms()
        for key in list(active):
            raw = self.groups.get(key)
            if raw is None:
                active.pop(key, None)
                continue
            state = decode_state(raw)[0]
            made = self.engine.tick(state, now)
            if made:
                await self._record(made)
                self._keep(key, state, partition)
            elif state.status == "inactive":
                active.pop(key, None)
        await self._write_behind(partition)
        self.telemetry.ticks_s.observe(time.perf_counter() - began)

    async def _write_behind(self, partition: int) -> None:
        dirty = self._dirty.pop(partition, set())
        states = [decode_state(raw)[0] for raw in (self.groups.get(key) for key in dirty) if raw is not None]
        try:
            await self._write_groups(states)
        except TRANSIENT as exc:  # a view for the API: the next tick writes them again
            self._dirty.setdefault(partition, set()).update(dirty)
            log.warning("group states not written behind (retrying next tick): %r", exc)

    def _active_in(self, partition: int) -> dict[bytes, tuple[str, str]]:
        """The partition's groups that are not inactive, read from the table at the first need
        after a start or a rebalance, whether a tick or a group's change comes first: a map begun
        by one group's change would hide the others from the ticks (a firing group whose series
        went silent would never resolve)."""
        active = self._active.get(partition)
        if active is None:
            active = self._active[partition] = self._scan(partition)
        return active

    def _scan(self, partition: int) -> dict[bytes, tuple[str, str]]:
        found = {}
        for key, raw in self.groups.items():
            state, where = decode_state(raw)
            if where == partition and state.status != "inactive":
                found[key] = _standing(state)
        return found

    def _keep(self, key: bytes, state: GroupState, partition: int) -> None:
        self.groups[key] = encode_state(state, partition)
        self._dirty.setdefault(partition, set()).add(key)
        active = self._active_in(partition)
        if state.status == "inactive":
            active.pop(key, None)
        else:
            active[key] = _standing(state)

    async def _record(self, made: list[Transition]) -> None:
        """Make the transitions durable, retrying until PostgreSQL takes them: the stream
        does not move on (nor commit) before, so none is lost."""
        if not made:
            return
        changes = [AlertChange(t, *self.engine.describe(t)) for t in made]
        await self._retry("transitions", lambda: self._apply_changes(changes))
        for t in made:
            self.telemetry.transitions.labels(t.status).inc()

    async def _retry(self, what: str, attempt: Callable[[], Awaitable[object]]) -> None:
        await until_done(what, attempt, max_delay_s=self.settings.alerter_retry_max_s,
                         stopping=lambda: self._runner.stopping, failed=self.telemetry.store_failures.inc)

    def _on_revoked(self, sender: Any, revoked: Iterable[Any], **_: Any) -> None:
        for tp in revoked:
            if tp.topic == self.observations.get_topic_name():
                self._active.pop(tp.partition, None)

    # --- timers ------------------------------------------------------------------------------

    async def _tick(self) -> None:
        await send_ticks(self.app, self.observations)
        counts: dict[tuple[str, str], int] = {}
        for active in self._active.values():
            for standing in active.values():
                counts[standing] = counts.get(standing, 0) + 1
        self.telemetry.set_alerts(counts)

    async def _reload(self) -> None:
        # A timer that raises crashes the whole faust app: PostgreSQL away is only a late reload.
        try:
            changes = await self._load_rules()
        except TRANSIENT as exc:  # retried at the next interval
            log.warning("rules not reloaded (PostgreSQL?), retrying: %r", exc)
            return
        if changes is None or not changes.backfill:
            return
        records = [decode_record(raw) for table in (self.latest, self.latest_metrics) for raw in table.values()]
        for obs in self.engine.backfill(changes.backfill, records):
            await self.observations.send(key=obs.fingerprint.encode(), value=encode_observation(obs))


def _standing(state: GroupState) -> tuple[str, str]:
    return state.status, state.labels.get("severity", "warning")
