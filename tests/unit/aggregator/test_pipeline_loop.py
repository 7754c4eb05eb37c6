"""The pipeline's loop (consume/pipeline.py) against fakes of its ports: exactly once in
memory and in the store, through failed writes, stale partitions, dead letters,
rebalances and outputs that raise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from services.aggregator.config import AggregatorSettings
from services.aggregator.consume.partitions import PartitionStatus
from services.aggregator.consume.pipeline import Pipeline
from services.aggregator.consume.results import BatchResult
from services.aggregator.errors import StoreError
from shared.kafka.consumer import TopicPartition
from shared.kafka.producer import ProduceError

from .pipeline_fakes import FakeConsumer, FakeDeadLetters, FakeEffort, FakeStore, RecordingOutput
from .pipeline_samples import share_json
from .samples import T0_MS, block_hash

pytestmark = pytest.mark.unit

SETTINGS = AggregatorSettings(aggregator_retry_initial_s=0.01, aggregator_retry_max_s=0.05,
                              aggregator_kafka_commit_interval_s=0)
W1 = ("main", "m1", "w1")


class Rig:
    def __init__(self, *outputs: RecordingOutput, lag_refresh_s: float = 1.0) -> None:
        self.consumer = FakeConsumer()
        self.store = FakeStore()
        self.letters = FakeDeadLetters()
        self.effort = FakeEffort()
        self.outputs = list(outputs) or [RecordingOutput()]
        self.pipeline = Pipeline(SETTINGS, self.consumer, self.store, self.letters, self.effort,
                                 outputs=self.outputs, lag_refresh_s=lag_refresh_s)

    def shares(self, start: int, n: int, *, prefix: str = "s") -> None:
        for i in range(start, start + n):
            self.consumer.append(share_json(T0_MS + i * 1_000, event_id=f"{prefix}{i}"))

    def stored(self, topic: str = "pool.shares") -> int:
        position = self.store.positions.get((topic, 0))
        return position.next_offset if position is not None else -1

    async def until(self, check: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not check():
                if not self.pipeline.running:
                    await self.pipeline.wait()  # raises what crashed it
                await asyncio.sleep(0.002)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = Rig()
    yield made
    await made.pipeline.stop()


async def test_every_share_is_written_once_and_the_outputs_hear_of_each_durable_batch(rig: Rig) -> None:
    rig.shares(0, 10)
    await rig.pipeline.start()
    await rig.until(lambda: rig.stored() == 10)
    rig.shares(10, 5)
    await rig.until(lambda: rig.stored() == 15)
    await rig.pipeline.stop()
    await rig.pipeline.stop()  # idempotent

    assert rig.store.accepted == {W1: 15}
    out = rig.outputs[0]
    assert sum(b.received.get("pool.shares", 0) for b in out.batches) == 15
    assert out.calls[0] == "start" and out.calls[-1] == "stop" and out.calls.count("stop") == 1
    assert out.batches[0].partitions[0].model is rig.pipeline.partitions.owned[0].model
    assert rig.consumer.committed[TopicPartition("pool.shares", 0)] == 15  # mirrored for lag tooling
    assert rig.consumer.calls[0] == ("start",) and rig.consumer.calls[-1] == ("stop",)
    assert rig.pipeline.stats.records == 15


async def test_a_failed_write_rebuilds_the_partition_from_the_store_and_counts_nothing_twice(rig: Rig) -> None:
    rig.store.failures.append(StoreError("PostgreSQL away", retriable=True, operation="batch write"))
    rig.shares(0, 5)
    await rig.pipeline.start()
    await rig.until(lambda: rig.stored() == 5)
    rig.shares(0, 5, prefix="s")  # the node retried every share it had sent (same event_ids)
    rig.shares(5, 3)
    await rig.until(lambda: rig.stored() == 13)
    await rig.pipeline.stop()  # settles the batch in flight: the stats are final

    assert rig.store.accepted == {W1: 8}
    stats = rig.pipeline.stats
    assert (stats.store_failures, stats.takeovers, stats.reuses) == (1, 2, 0)
    assert rig.store.loads == [0, 0]  # the first take-over, then the rebuild after the failure
    assert stats.duplicates.get("pool.shares") == 5


async def test_a_partition_another_member_moved_on_is_dropped_and_resumed_at_its_offsets(rig: Rig) -> None:
    await rig.pipeline.start()
    await rig.until(lambda: rig.pipeline.partitions.status(0) is PartitionStatus.OWNED)
    rig.store.move("pool.shares", 0, 3)  # someone else wrote the first three shares
    rig.shares(0, 5)
    await rig.until(lambda: rig.stored() == 5)
    await rig.pipeline.stop()

    assert rig.store.accepted == {W1: 2}  # only the records past the other member's
    assert rig.pipeline.stats.stale_partitions == 1
    assert ("seek", TopicPartition("pool.shares", 0), 3) in rig.consumer.calls


async def test_bad_records_are_dead_lettered_before_the_batch_and_passed_over(rig: Rig) -> None:
    rig.letters.failures.append(ProduceError("broker busy", retriable=True))
    rig.consumer.append(b"not json")
    rig.shares(1, 1)
    await rig.pipeline.start()
    await rig.until(lambda: rig.stored() == 2)
    await rig.pipeline.stop()

    assert [letter.record.offset for letter in rig.letters.sent] == [0]  # sent again after the refusal
    assert rig.store.accepted == {W1: 1}
    assert rig.pipeline.stats.dead_lettered == {"pool.shares": 1}


async def test_a_write_that_cannot_succeed_stops_the_pipeline_with_the_error(rig: Rig) -> None:
    rig.store.failures.append(StoreError("permission denied", retriable=False, operation="batch write"))
    rig.shares(0, 1)
    await rig.pipeline.start()
    with pytest.raises(StoreError) as info:
        await rig.until(lambda: False)
    assert info.value.operation == "batch write"
    assert not rig.pipeline.running


async def test_a_rebalance_that_hands_the_partition_back_keeps_its_model(rig: Rig) -> None:
    rig.shares(0, 4)
    await rig.pipeline.start()
    await rig.until(lambda: rig.stored() == 4)
    model = rig.pipeline.partitions.owned[0].model
    await rig.consumer.reassign(0)
    rig.shares(4, 4)
    await rig.until(lambda: rig.stored() == 8)
    await rig.pipeline.stop()

    assert rig.pipeline.partitions.owned[0].model is model
    assert (rig.pipeline.stats.reuses, rig.store.loads) == (1, [0])
    assert rig.store.accepted == {W1: 8}


async def test_a_revoked_partition_is_announced_to_the_outputs(rig: Rig) -> None:
    rig.consumer.assignment |= {TopicPartition(t, 1) for t in ("pool.shares", "pool.blocks", "pool.miners")}
    await rig.pipeline.start()
    await rig.until(lambda: set(rig.pipeline.partitions.owned) == {0, 1})
    await rig.consumer.reassign(0)
    rig.shares(0, 1)
    await rig.until(lambda: any(1 in b.revoked for b in rig.outputs[0].batches))
    assert set(rig.pipeline.partitions.owned) == {0}


async def test_an_output_that_raises_is_skipped_and_the_others_still_hear() -> None:
    good, bad = RecordingOutput(), RecordingOutput(fail=True)
    rig = Rig(bad, good)
    try:
        rig.shares(0, 3)
        await rig.pipeline.start()
        await rig.until(lambda: rig.stored() == 3 and bool(good.batches))
        assert rig.pipeline.stats.output_failures >= 1
        assert len(bad.batches) == len(good.batches)
        assert rig.pipeline.running
    finally:
        await rig.pipeline.stop()


async def test_a_batch_that_wrote_a_block_asks_for_an_effort_refresh(rig: Rig) -> None:
    found_ms = T0_MS + 5_000
    rig.consumer.append({"event_id": "b1", "type": "block", "ts": found_ms, "node": "n1", "miner": "m1",
                         "worker": "w1", "height": 7, "hash": block_hash(7), "network_difficulty": 50.0,
                         "status": "candidate"}, topic="pool.blocks")
    await rig.pipeline.start()
    await rig.until(lambda: rig.stored("pool.blocks") == 1)
    await rig.pipeline.stop()
    assert rig.effort.pokes == [found_ms]




def _lag_reports(output: RecordingOutput) -> list[tuple[int | None, dict[tuple[str, int], int]]]:
    return [(b.consumer_lag_at_ms, dict(b.consumer_lag)) for b in output.batches if b.consumer_lag is not None]


async def test_an_idle_pipeline_keeps_telling_the_outputs_it_is_caught_up() -> None:
    rig = Rig(lag_refresh_s=0.02)
    try:
        rig.shares(0, 3)
        await rig.pipeline.start()
        await rig.until(lambda: rig.stored() == 3)
        out = rig.outputs[0]

        def idle() -> list[BatchResult]:
            return [b for b in out.batches if not b.received and not b.partitions]

        await rig.until(lambda: len(idle()) >= 3)  # nothing more to read, and still told
        assert all(b.consumer_lag and set(b.consumer_lag.values()) == {0} for b in idle())
        assert all(("pool.shares", 0) in (b.consumer_lag or {}) for b in idle())
        stamps = [b.consumer_lag_at_ms for b in idle()]
        assert None not in stamps and stamps == sorted(stamps)
        assert out.batches[-1].consumer_lag_at_ms is not None
    finally:
        await rig.pipeline.stop()


async def test_a_stalled_write_stops_the_reports_so_no_worker_ages_while_nothing_is_read() -> None:
    rig = Rig(lag_refresh_s=0.02)
    try:
        rig.shares(0, 3)
        await rig.pipeline.start()
        await rig.until(lambda: rig.stored() == 3 and len(_lag_reports(rig.outputs[0])) >= 2)
        rig.store.held = asyncio.Event()
        rig.shares(3, 2)
        owned = rig.pipeline.partitions.owned[0]
        await rig.until(lambda: owned.next_offsets["pool.shares"] == 5)  # folded; its write now waits
        reported = len(rig.outputs[0].batches)
        await asyncio.sleep(0.2)  # ten refresh intervals with the database away
        assert len(rig.outputs[0].batches) == reported, "caught up reported while a write was stalled"
        rig.store.held.set()
        await rig.until(lambda: rig.stored() == 5 and len(rig.outputs[0].batches) > reported)
    finally:
        if rig.store.held is not None:
            rig.store.held.set()
        await rig.pipeline.stop()
