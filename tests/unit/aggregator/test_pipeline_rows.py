"""Rows a batch writes: merged across partitions, sorted by key, times as integer ms."""

from __future__ import annotations

import orjson
import pytest

from services.aggregator.adapters.columns import (
    block_columns,
    merge_writes,
    minute_columns,
    offset_columns,
    pool_columns,
    worker_columns,
)
from services.aggregator.consume.writes import OffsetMove, PartitionWrite, worker_status_rows
from services.aggregator.domain.activity import ActivityLedger
from services.aggregator.domain.blocks import BlockRecord
from services.aggregator.domain.liveness import Liveness
from services.aggregator.domain.minutes import MinuteStats

from .samples import MIN, T0_MS

pytestmark = pytest.mark.unit


def _write(partition: int, miner: str, accepted: int) -> PartitionWrite:
    w = PartitionWrite(partition, watermark_ms=T0_MS + partition)
    w.worker_deltas = {("main", miner, "w", T0_MS): MinuteStats(accepted=accepted, last_share_ms=T0_MS + 5)}
    w.pool_deltas = {("main", T0_MS): MinuteStats(accepted=accepted, best_seen=float(accepted))}
    w.pool_activity = {("main", T0_MS): [1, 1]}
    w.offsets = [OffsetMove("pool.shares", partition, 0, accepted, None)]
    return w


def test_pool_rows_of_several_partitions_add_up() -> None:
    source = [_write(1, "b", 3), _write(0, "a", 2)]
    merged = merge_writes(source)
    assert merged.pool_deltas[("main", T0_MS)].accepted == 5
    assert merged.pool_deltas[("main", T0_MS)].best_seen == 3.0
    assert source[0].pool_deltas[("main", T0_MS)].accepted == 3  # sources untouched
    cols = minute_columns(merged.worker_deltas)
    assert cols[1] == ["a", "b"]  # sorted by key: every writer locks rows in the same order
    assert cols[3] == [T0_MS, T0_MS] and cols[9] == [T0_MS + 5, T0_MS + 5]
    pools = pool_columns(merged.pool_deltas, merged.pool_activity)
    assert [c[0] for c in pools] == ["main", T0_MS, 5, 0, 0, 0.0, 3.0, 0, 2, 2]  # activity adds up too
    assert offset_columns(merged.offsets) == (["pool.shares", "pool.shares"], [0, 1], [2, 3],
                                              [None, None], [T0_MS, T0_MS + 1])


def test_a_block_only_row_has_no_last_share() -> None:
    cols = minute_columns({("main", "m", "w", T0_MS): MinuteStats(blocks_found=1)})
    assert cols[9] == [None] and cols[10] == [1]


def test_block_and_worker_columns() -> None:
    block = BlockRecord("main", "ab" * 32, 7, "m", "w", 50.0, None, "orphaned", T0_MS + 9, T0_MS)
    cols = block_columns({block.hash: (block, 4)})
    assert [c[0] for c in cols] == ["ab" * 32, "main", 7, "m", "w", 50.0, None, "orphaned", T0_MS,
                                    T0_MS + 9, 4]
    live = Liveness()
    live.observe_share(("main", "m", "w"), T0_MS)
    live.observe_connection(("main", "m", "w"), "n1", "connected", T0_MS - MIN)
    activity = ActivityLedger(max_lateness_ms=60 * MIN)
    activity.observe([("main", "m", "w", T0_MS)])
    rows = worker_status_rows(live, activity, [("main", "m", "w"), ("main", "m", "unknown")], 2)
    assert len(rows) == 1
    cols = worker_columns({rows[0].key: rows[0]})
    assert [c[0] for c in cols[:7]] == ["main", "m", "w", T0_MS, T0_MS + 30 * MIN, True, T0_MS - MIN]
    assert orjson.loads(cols[7][0]) == {"n1": [T0_MS - MIN, True]} and cols[8] == [2]
    assert cols[9] == [T0_MS] and cols[10] == [b"\x01"]  # its one share-minute, from T0
