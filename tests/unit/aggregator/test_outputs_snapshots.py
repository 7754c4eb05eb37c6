"""The snapshot publisher's ticks, with a recording producer: what is sent, when, and how much."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from services.aggregator.consume.results import BatchResult, PartitionResult
from services.aggregator.domain.model import PoolAggregate
from services.aggregator.errors import StoreError
from services.aggregator.outputs.snapshot_stream import SnapshotPublisher, entity_key
from shared.kafka.producer import ProduceError
from shared.kafka.topics import Topic
from shared.settings import ServiceSettings

from .samples import MIN, T0_MS, miner_event, share

pytestmark = pytest.mark.unit


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[list[tuple[str, bytes, bytes]]] = []
        self.fail = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send_batch(self, records: Iterable[Any], *, timeout_s: float | None = None) -> None:
        batch = [(r[0], r[1], r[2]) for r in records]
        if self.fail:
            raise ProduceError("broker away", retriable=True, failed=len(batch))
        self.sent.append(batch)

    def last(self) -> dict[bytes, dict[str, Any]]:
        return {key: orjson.loads(value) for _, key, value in self.sent[-1]}


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def publisher(clock: Clock, **kwargs: Any) -> tuple[SnapshotPublisher, RecordingProducer]:
    producer = RecordingProducer()
    pub = SnapshotPublisher(ServiceSettings(kafka_topic_prefix="x."), producer=producer,  # type: ignore[arg-type]
                            clock_ms=clock, **kwargs)
    return pub, producer


def feed(pub: SnapshotPublisher, model: PoolAggregate, shares: list[Any], partition: int = 0, *,
         arrival_ms: int | None = None, behind: int = 0) -> None:
    """A batch as the pipeline folds and hands it over: the model (with the Kafka timestamp
    of its newest share record, None: not known), its share results, the partition's lag."""
    if arrival_ms is not None:
        model.share_arrival_ms = arrival_ms
    result = model.ingest_shares(shares)
    pub.on_batch(BatchResult(partitions={partition: PartitionResult(model, shares=result)},
                             consumer_lag={(Topic.SHARES, partition): behind}))


FARM = [share(T0_MS + i * 1000, miner=f"m{i % 2}", worker=f"w{i % 3}", difficulty=2.0) for i in range(60)]


async def test_first_tick_sends_every_entity_with_the_documented_schema() -> None:
    clock = Clock(T0_MS + MIN + 5_000)
    pub, producer = publisher(clock)
    model = PoolAggregate()
    feed(pub, model, FARM)
    report = await pub.tick()
    assert report.records == {"pool": 1, "miner": 2, "worker": 6}  # workers: (m0|m1) x (w0|w1|w2)
    assert {topic for topic, _, _ in producer.sent[0]} == {"x.chimera.snapshots"}
    records = producer.last()
    assert set(records) == {b"pool:main", b"miner:main/m0", b"miner:main/m1"} | {
        f"worker:main/m{m}/w{w}".encode() for m in range(2) for w in range(3)}
    pool = records[b"pool:main"]
    assert set(pool) == {"entity", "pool", "as_of_ms", "figures"}
    assert (pool["entity"], pool["pool"], pool["as_of_ms"]) == ("pool", "main", clock.ms)
    assert pool["figures"]["shares"]["1m"] == 60 and pool["figures"]["active_workers"] == 6
    assert pool["figures"]["as_of_ms"] == T0_MS + MIN  # windows end at the current minute
    miner = records[b"miner:main/m0"]
    assert set(miner) == {"entity", "pool", "miner", "as_of_ms", "figures"}
    assert miner["figures"]["workers_total"] == 3 and miner["figures"]["online"] is True
    worker = records[b"worker:main/m1/w2"]
    assert (worker["entity"], worker["miner"], worker["worker"]) == ("worker", "m1", "w2")
    assert set(worker["figures"]) >= {"hashrate", "hashrate_lower", "hashrate_upper", "shares", "submitted",
                                      "shares_per_second", "efficiency", "online", "last_share_at_ms"}
    assert worker["figures"]["shares"]["1m"] == 10


async def test_only_changed_entities_follow_and_pools_every_tick() -> None:
    clock = Clock(T0_MS + MIN)
    pub, producer = publisher(clock)
    model = PoolAggregate()
    feed(pub, model, FARM)
    await pub.tick()
    assert (await pub.tick()).records == {"pool": 1, "miner": 0, "worker": 0}
    feed(pub, model, [share(T0_MS + MIN + 1, miner="m1", worker="w0")])
    assert (await pub.tick()).records == {"pool": 1, "miner": 1, "worker": 1}
    assert set(producer.last()) == {b"pool:main", b"miner:main/m1", b"worker:main/m1/w0"}


async def test_records_per_tick_are_bounded_and_a_sweep_repeats() -> None:
    clock = Clock(T0_MS + MIN)
    pub, _ = publisher(clock, max_records_per_tick=3, full_sweep_ticks=5)
    feed(pub, PoolAggregate(), FARM)
    sent = []
    for _ in range(2):
        report = await pub.tick()
        sent.append((report.records["worker"], report.records["miner"]))
    assert sent == [(3, 2), (3, 2)]  # 6 workers, 3 per tick, each with its miners
    assert pub.pending == 0
    for _ in range(3):
        assert not (await pub.tick()).sweep_started
    sweep = await pub.tick()  # tick 6: five ticks after the first sweep
    assert sweep.sweep_started and sweep.records["worker"] == 3
    assert sweep.pending_left == 3


async def test_liveness_changes_jump_the_queue() -> None:
    clock = Clock(T0_MS + MIN)
    pub, producer = publisher(clock, max_records_per_tick=2)
    model = PoolAggregate()
    feed(pub, model, FARM)
    model.ingest_miner_events([miner_event(T0_MS + 59_000, "disconnected", miner="m1", worker="w2")])
    pub.on_batch(BatchResult(partitions={0: PartitionResult(model, connections=[("main", "m1", "w2")])}))
    await pub.tick()
    records = producer.last()
    assert records[b"worker:main/m1/w2"]["figures"]["online"] is False  # first, despite 5 older changes
    assert len([k for k in records if k.startswith(b"worker:")]) == 2


async def test_a_worker_that_stops_while_queued_jumps_the_queue_when_its_deadline_passes() -> None:
    """More workers change than a tick may send: a worker never published yet that stops
    is told offline as soon as its deadline passes, not when the queue reaches it."""
    clock = Clock(T0_MS + MIN)
    pub, producer = publisher(clock, max_records_per_tick=2, full_sweep_ticks=1000)
    model = PoolAggregate()
    busy = [share(T0_MS + i * 1000, miner="busy", worker=f"b{i % 40}") for i in range(40 * 60)]  # 40 min
    feed(pub, model, busy + [share(T0_MS + i * 1000, worker="quiet") for i in range(3)])
    young = model.liveness.offline_deadline_ms(("main", "m1", "quiet"))  # no rate yet: the ceiling
    await pub.tick()  # sends 2 of 41 workers: busy ones came first, "quiet" is still queued
    assert b"worker:main/m1/quiet" not in producer.last()
    feed(pub, model, [share(T0_MS + 3_000 + i * 1000, worker="quiet") for i in range(120)])  # its rate shows
    await pub.tick()
    deadline = model.liveness.offline_deadline_ms(("main", "m1", "quiet"))
    assert young is not None and deadline is not None and deadline < young
    clock.ms = deadline + 1
    await pub.tick()
    records = producer.last()
    assert records[b"worker:main/m1/quiet"]["figures"]["online"] is False
    assert pub.pending > 30  # the queue did not get there by itself


async def test_a_worker_that_stops_is_published_offline_without_any_event() -> None:
    clock = Clock(T0_MS + MIN)
    pub, producer = publisher(clock)
    model = PoolAggregate()
    feed(pub, model, [share(T0_MS + i * 1000, worker="quiet") for i in range(3)])
    await pub.tick()
    assert producer.last()[b"worker:main/m1/quiet"]["figures"]["online"] is True
    clock.ms = T0_MS + 20 * MIN  # before the 30 min ceiling: nothing to say
    assert (await pub.tick()).records["worker"] == 0
    clock.ms = T0_MS + 35 * MIN
    report = await pub.tick()
    assert report.records == {"pool": 1, "miner": 1, "worker": 1}
    records = producer.last()
    assert records[b"worker:main/m1/quiet"]["figures"]["online"] is False
    assert records[b"miner:main/m1"]["figures"]["online"] is False
    assert records[b"pool:main"]["figures"]["active_workers"] == 0
    assert (await pub.tick()).records["worker"] == 0  # not watched any more


async def test_a_backfill_of_old_event_time_is_judged_at_its_own_time() -> None:
    """An hour of old event time read in a burst (a node replaying what it held back, the
    simulator's fast mode): its workers are not offline because their data is an hour old,
    neither while the consumer lags nor once it has caught up; a silence after the
    backfill then ages them out as it would live."""
    backfill_end_ms = T0_MS + 60 * MIN
    clock = Clock(backfill_end_ms + 30 * MIN)
    pub, producer = publisher(clock)
    model = PoolAggregate()
    steady = [share(T0_MS + i * 10_000, worker="steady") for i in range(360)]  # one share per 10 s
    feed(pub, model, steady[:180], arrival_ms=clock.ms, behind=180)
    await pub.tick()
    figures = producer.last()[b"worker:main/m1/steady"]["figures"]
    assert (figures["online"], figures["catching_up"]) == (True, True)  # lagging: event time
    feed(pub, model, steady[180:], arrival_ms=clock.ms, behind=0)
    await pub.tick()
    records = producer.last()
    figures = records[b"worker:main/m1/steady"]["figures"]
    # caught up, but on old event time that arrived just now: windows lack what may follow
    assert (figures["online"], figures["catching_up"], records[b"pool:main"]["figures"]["catching_up"]) == (
        True, True, True)
    clock.ms += 60_000  # a minute of silence: well inside a 10 s worker's threshold
    assert (await pub.tick()).records["worker"] == 0
    clock.ms += 10 * MIN
    await pub.tick()
    records = producer.last()
    figures = records[b"worker:main/m1/steady"]["figures"]
    # nothing came after the backfill: what the partition holds is what there is
    assert (figures["online"], figures["catching_up"]) == (False, False)
    assert records[b"pool:main"]["figures"]["active_workers"] == 0


async def test_a_stalled_consumer_ages_no_worker_until_it_reports_again() -> None:
    """The pipeline stops reporting the lag while a batch's write hangs (PostgreSQL away):
    nothing read is nothing known, so no worker may go offline for the wall time that passes;
    once the pipeline reports being caught up again, the silence counts."""
    clock = Clock(T0_MS + MIN)
    pub, producer = publisher(clock)
    model = PoolAggregate()
    model.share_arrival_ms = T0_MS + 2_000
    result = model.ingest_shares([share(T0_MS + i * 1000, worker="quiet") for i in range(3)])
    pub.on_batch(BatchResult(partitions={0: PartitionResult(model, shares=result)},
                             consumer_lag={(Topic.SHARES, 0): 0}, consumer_lag_at_ms=T0_MS + 3_000))
    await pub.tick()
    assert producer.last()[b"worker:main/m1/quiet"]["figures"]["online"] is True
    clock.ms = T0_MS + 35 * MIN  # past the 30 min ceiling, but the consumer said nothing since
    await pub.tick()
    assert b"worker:main/m1/quiet" not in producer.last()
    pub.on_batch(BatchResult(consumer_lag={(Topic.SHARES, 0): 0}, consumer_lag_at_ms=clock.ms))  # back, idle
    await pub.tick()
    assert producer.last()[b"worker:main/m1/quiet"]["figures"]["online"] is False


async def test_a_disconnect_is_published_at_once() -> None:
    clock = Clock(T0_MS + MIN)
    pub, producer = publisher(clock)
    model = PoolAggregate()
    feed(pub, model, [share(T0_MS + 1000)])
    await pub.tick()
    model.ingest_miner_events([miner_event(T0_MS + 2000, "disconnected")])
    pub.on_batch(BatchResult(partitions={0: PartitionResult(model, connections=[("main", "m1", "w1")])}))
    await pub.tick()
    assert producer.last()[b"worker:main/m1/w1"]["figures"]["online"] is False


async def test_unacknowledged_records_are_retried_next_tick() -> None:
    clock = Clock(T0_MS + MIN)
    pub, producer = publisher(clock)
    feed(pub, PoolAggregate(), FARM)
    producer.fail = True
    failed = await pub.tick()
    assert isinstance(failed.error, ProduceError) and failed.pending_left == 6
    producer.fail = False
    assert (await pub.tick()).records == {"pool": 1, "miner": 2, "worker": 6}


async def test_revoked_partitions_are_dropped() -> None:
    clock = Clock(T0_MS + MIN)
    pub, producer = publisher(clock)
    feed(pub, PoolAggregate(), [share(T0_MS, miner="a")], partition=0)
    feed(pub, PoolAggregate(), [share(T0_MS, miner="b")], partition=1)
    await pub.tick()
    assert producer.last()[b"pool:main"]["figures"]["shares"]["1m"] == 2
    pub.on_batch(BatchResult(revoked=[1]))
    feed(pub, pub.models.models[0], [share(T0_MS + 1, miner="a")], partition=0)
    await pub.tick()
    assert producer.last()[b"pool:main"]["figures"]["shares"]["1m"] == 2  # a's two, b's gone


class StoredPoolFigures:
    """A stand-in for the database read: records each call, fails when told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.fail = False

    async def __call__(self, as_of_ms: int, live_at_ms: int) -> dict[str, dict[str, Any]]:
        self.calls.append((as_of_ms, live_at_ms))
        if self.fail:
            raise StoreError("reading pool figures failed", retriable=True, operation="read")
        return {"main": {"hashrate": {"5m": 123.0}, "round_effort": 0.5}, "alt": {"hashrate": {"5m": 1.0}}}


async def test_pool_records_come_from_the_database_when_it_answers() -> None:
    clock = Clock(T0_MS + MIN + 5_000)
    stored = StoredPoolFigures()
    pub, producer = publisher(clock, load_pool_figures=stored)
    feed(pub, PoolAggregate(), FARM[:30])  # this process's own part of the pool
    report = await pub.tick()
    assert report.records["pool"] == 2  # every pool the database knows, not only those held here
    records = producer.last()
    assert records[b"pool:main"]["figures"] == {"hashrate": {"5m": 123.0}, "round_effort": 0.5, "catching_up": False}
    assert records[b"pool:alt"]["figures"] == {"hashrate": {"5m": 1.0}, "catching_up": False}
    as_of, live_at = stored.calls[-1]
    assert as_of - as_of % MIN == T0_MS + MIN and live_at <= clock.ms


async def test_no_pool_records_rather_than_a_part_of_a_pool_while_the_database_is_away() -> None:
    stored = StoredPoolFigures()
    stored.fail = True
    pub, producer = publisher(Clock(T0_MS + MIN), load_pool_figures=stored)
    feed(pub, PoolAggregate(), FARM[:30])
    report = await pub.tick()
    assert report.records["pool"] == 0 and report.records["worker"] > 0  # workers are whole here
    assert not any(key.startswith(b"pool:") for key in producer.last())


def test_entity_keys() -> None:
    assert entity_key("pool", "main") == b"pool:main"
    assert entity_key("miner", "main", "bc1q/x") == b"miner:main/bc1q/x"
    assert entity_key("worker", "eu", "m", "rig-1") == b"worker:eu/m/rig-1"
