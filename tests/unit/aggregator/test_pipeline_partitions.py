"""The partition life cycle (consume/partitions.py) against fakes of the consumer and store."""

from __future__ import annotations

import pytest

from services.aggregator.config import AggregatorSettings
from services.aggregator.consume.partitions import Partitions, PartitionStatus
from services.aggregator.consume.results import PipelineStats
from services.aggregator.errors import AggregatorError
from shared.kafka.consumer import ConsumeError, TopicPartition

from .pipeline_fakes import FakeConsumer, FakeStore, tps_of

pytestmark = pytest.mark.unit

SETTINGS = AggregatorSettings()
PENDING, OWNED, PARKED = PartitionStatus.PENDING, PartitionStatus.OWNED, PartitionStatus.PARKED


def partitions() -> tuple[Partitions, FakeConsumer, FakeStore, PipelineStats]:
    consumer, store, stats = FakeConsumer(), FakeStore(), PipelineStats()
    return Partitions(SETTINGS, consumer, store, stats), consumer, store, stats


async def owned(*numbers: int) -> tuple[Partitions, FakeConsumer, FakeStore, PipelineStats]:
    parts, consumer, store, stats = partitions()
    parts.assigned(tps_of(*numbers))
    assert await parts.take_over_pending()
    parts.take_changes()
    return parts, consumer, store, stats


async def test_an_assigned_partition_waits_paused_until_taken_over_at_its_stored_offsets() -> None:
    parts, consumer, store, stats = partitions()
    consumer.beginning[TopicPartition("pool.blocks", 0)] = 7  # the broker's oldest record
    store.move("pool.shares", 0, 40)  # the figures already hold the first 40 shares
    parts.assigned(tps_of(0))
    assert parts.status(0) is PENDING and parts.pending == {0}
    assert consumer.paused == tps_of(0)

    assert await parts.take_over_pending()
    assert parts.status(0) is OWNED and set(parts.owned) == {0}
    assert consumer.paused == set()
    seeks = {call[1].topic: call[2] for call in consumer.calls if call[0] == "seek"}
    assert seeks == {"pool.shares": 40, "pool.blocks": 7, "pool.miners": 0}
    assert parts.owned[0].next_offsets == seeks
    assert (stats.takeovers, stats.reuses, store.loads) == (1, 0, [0])
    assert parts.take_changes() == ({0}, set())


async def test_a_revoked_partition_is_parked_and_its_model_kept_if_nobody_moved_it() -> None:
    parts, consumer, store, stats = await owned(0)
    model = parts.model(0)
    parts.revoked(tps_of(0))
    assert parts.status(0) is PARKED and parts.model(0) is None  # not live while parked
    parts.assigned(tps_of(0))
    assert parts.status(0) is PENDING and consumer.paused == tps_of(0)
    assert await parts.take_over_pending()
    assert parts.model(0) is model
    assert (stats.takeovers, stats.reuses, store.loads) == (1, 1, [0])


async def test_a_partition_moved_on_while_parked_is_rebuilt_from_the_store() -> None:
    parts, _consumer, store, stats = await owned(0)
    model = parts.model(0)
    parts.revoked(tps_of(0))
    store.move("pool.shares", 0, 99)  # another member processed it meanwhile
    parts.assigned(tps_of(0))
    assert await parts.take_over_pending()
    assert parts.model(0) is not model
    assert parts.owned[0].next_offsets["pool.shares"] == 99
    assert (stats.takeovers, stats.reuses, store.loads) == (2, 0, [0, 0])


async def test_a_parked_partition_not_assigned_again_is_forgotten() -> None:
    parts, *_ = await owned(0, 1)
    parts.revoked(tps_of(0, 1))
    parts.assigned(tps_of(1))
    assert (parts.status(0), parts.status(1)) == (None, PENDING)
    assert parts.take_changes() == (set(), {0, 1})


async def test_a_dropped_partition_loses_its_model_and_is_taken_over_again() -> None:
    parts, consumer, store, stats = await owned(0, 1)
    parts.drop([1, 5])  # 5 is not ours: nothing to drop
    assert (parts.status(0), parts.status(1)) == (OWNED, PENDING)
    assert consumer.paused == tps_of(1)
    assert parts.take_changes() == (set(), {1})
    assert await parts.take_over_pending()
    assert parts.status(1) is OWNED and store.loads == [0, 1, 1]  # rebuilt, never reused
    assert stats.reuses == 0


async def test_an_owned_partition_missing_from_a_new_assignment_is_gone_even_without_a_revocation() -> None:
    parts, *_ = await owned(0, 1)
    parts.assigned(tps_of(1))  # still owned: stays owned, not paused again
    assert (parts.status(0), parts.status(1)) == (None, OWNED)
    assert parts.take_changes() == (set(), {0})


@pytest.mark.parametrize(("retriable", "outcome"), [(True, "retry later"), (False, "raised")])
async def test_a_failed_take_over_is_retried_only_when_retrying_can_help(retriable: bool, outcome: str) -> None:
    parts, consumer, _store, _stats = partitions()
    consumer.beginning_failures.append(ConsumeError("broker away", retriable=retriable))
    parts.assigned(tps_of(0))
    if outcome == "raised":
        with pytest.raises(AggregatorError) as info:
            await parts.take_over_pending()
        assert not info.value.retriable
    else:
        assert await parts.take_over_pending() is False
        assert parts.status(0) is PENDING
        assert await parts.take_over_pending() is True
        assert parts.status(0) is OWNED
