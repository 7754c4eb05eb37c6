"""Two members in one group split the partitions; joining or leaving mid-stream changes
no final figure. And a member that lost a partition without noticing cannot write for it."""

from __future__ import annotations

import asyncio

import pytest

from services.aggregator.adapters.store import AggregatorStore
from services.aggregator.consume.writes import OffsetMove, PartitionWrite
from services.aggregator.domain.minutes import MinuteStats
from shared.db import connect
from shared.db.pool import create_pool
from shared.kafka.topics import topic_name

from .conftest import assert_figures, produce, running, wait_caught_up
from .streams import make_stream

pytestmark = pytest.mark.integration


async def test_a_member_joining_and_one_leaving_change_no_figure(agg_settings) -> None:  # type: ignore[no-untyped-def]
    events, truth = make_stream(seed=21, shares=36_000)
    thirds = [events[: len(events) // 3], events[len(events) // 3: 2 * len(events) // 3],
              events[2 * len(events) // 3:]]
    await produce(agg_settings, thirds[0])
    async with running(agg_settings, client_id="member-a") as a:
        await wait_caught_up(agg_settings)
        assert set(a.pipeline.partitions.owned) == {0, 1, 2}
        async with running(agg_settings, client_id="member-b") as b:
            # B joins while the second third streams in: the group rebalances mid-stream.
            await asyncio.gather(produce(agg_settings, thirds[1]), asyncio.sleep(0))
            await wait_caught_up(agg_settings, check=lambda: bool(b.pipeline.partitions.owned))
            owned_a, owned_b = set(a.pipeline.partitions.owned), set(b.pipeline.partitions.owned)
            assert owned_a and owned_b and not owned_a & owned_b and owned_a | owned_b == {0, 1, 2}
            # A leaves (gracefully) while the last third streams in; B takes everything.
            producing = asyncio.create_task(produce(agg_settings, thirds[2]))
            await asyncio.sleep(0.3)
            await a.stop()
            await producing
            await wait_caught_up(agg_settings, check=lambda: len(b.pipeline.partitions.owned) == 3)
            assert b.stats.takeovers >= 3 and b.stats.batches > 0
    await assert_figures(agg_settings, truth)


async def test_a_stale_owner_writes_nothing(agg_settings) -> None:  # type: ignore[no-untyped-def]
    pool = await create_pool(agg_settings)
    try:
        group = topic_name(agg_settings, agg_settings.aggregator_group_id)
        store = AggregatorStore(pool, group)
        topic = topic_name(agg_settings, "pool.shares")
        await store.ensure_offsets({(topic, 0): 0})

        def write(accepted: int) -> PartitionWrite:
            w = PartitionWrite(0, watermark_ms=1_767_225_600_000)
            w.worker_deltas = {("main", "m", "w", 1_767_225_600_000): MinuteStats(accepted=accepted)}
            w.pool_deltas = {("main", 1_767_225_600_000): MinuteStats(accepted=accepted)}
            w.offsets = [OffsetMove(topic, 0, 0, 10, None)]
            w.claims = {(topic, 0): 0}
            return w

        # Two members both read offset 0 and processed the same ten records.
        first, second = await asyncio.gather(store.write([write(7)]), store.write([write(7)]))
        assert sorted([first.committed, second.committed]) == [[], [0]]
        assert sorted([first.stale, second.stale]) == [[], [0]]
        conn = await connect(agg_settings)
        try:
            assert await conn.fetchval("SELECT accepted FROM pool_metrics") == 7  # once
            assert await conn.fetchval("SELECT next_offset FROM aggregator_offsets") == 10
        finally:
            await conn.close()
    finally:
        await pool.close()
