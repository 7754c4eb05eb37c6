"""Minute buckets: minute_start, the batch fold, merging and absolute rows."""

from __future__ import annotations

import math
import random

import pytest

from services.aggregator.domain.minutes import (
    MinuteStats,
    fold_shares,
    merge,
    minute_start,
    roll_up_pools,
)
from services.aggregator.domain.table import MinuteTable

from .samples import MIN, T0_MS, share

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("ts_ms", "expected"),
    [
        (0, 0),  # the epoch itself
        (1, 0),
        (59_999, 0),  # 1 ms before the first minute boundary
        (60_000, 60_000),  # exactly on a boundary
        (60_001, 60_000),
        (-1, -60_000),  # floors, not truncates, before the epoch
        (-60_000, -60_000),
        (-60_001, -120_000),
        (T0_MS, T0_MS),
        (T0_MS - 1, T0_MS - MIN),
        (T0_MS + MIN - 1, T0_MS),
        (T0_MS + 24 * 60 * MIN, T0_MS + 24 * 60 * MIN),
    ],
)
def test_minute_start(ts_ms: int, expected: int) -> None:
    assert minute_start(ts_ms) == expected


def test_fold_counts_each_status_into_its_own_minute() -> None:
    shares = [
        share(T0_MS + 1_000, difficulty=2.0, actual=5.0),
        share(T0_MS + 59_999, difficulty=3.0, actual=9.0),
        share(T0_MS + 30_000, status="rejected", difficulty=100.0, actual=50.0),
        share(T0_MS + 40_000, status="stale", difficulty=100.0),
        share(T0_MS + MIN, difficulty=4.0),  # next minute
        share(T0_MS + 5, worker="w2", difficulty=8.0),
    ]
    out = fold_shares(shares)
    first = out[("main", "m1", "w1", T0_MS)]
    assert (first.accepted, first.rejected, first.stale) == (2, 1, 1)
    assert first.submitted == 4
    assert first.difficulty_accepted == 5.0  # rejected/stale difficulty is not credited
    assert first.best_difficulty == 50.0  # best hash of any status
    assert first.last_share_at_ms == T0_MS + 59_999
    second = out[("main", "m1", "w1", T0_MS + MIN)]
    assert (second.accepted, second.difficulty_accepted, second.best_difficulty) == (1, 4.0, None)
    assert out[("main", "m1", "w2", T0_MS)].difficulty_accepted == 8.0
    pools = roll_up_pools(out)
    assert pools[("main", T0_MS)].accepted == 3
    assert pools[("main", T0_MS)].difficulty_accepted == 13.0
    assert pools[("main", T0_MS + MIN)].accepted == 1


def test_empty_stats_report_nothing() -> None:
    stats = MinuteStats()
    assert stats.best_difficulty is None
    assert stats.last_share_at_ms is None
    assert stats.as_row()["difficulty_accepted"] == 0.0


def test_difficulty_sum_is_exact_and_order_free() -> None:
    rng = random.Random(7)
    diffs = [rng.uniform(0.001, 1e9) for _ in range(2_000)]
    events = [share(T0_MS + i, difficulty=d) for i, d in enumerate(diffs)]
    expected = math.fsum(diffs)
    for _ in range(3):
        rng.shuffle(events)
        stats = fold_shares(events)[("main", "m1", "w1", T0_MS)]
        assert stats.difficulty_accepted == expected


def _random_stats(rng: random.Random) -> MinuteStats:
    return MinuteStats(
        rng.randrange(5), rng.randrange(5), rng.randrange(5), rng.randrange(10**30),
        rng.choice([0.0, rng.uniform(1, 100)]), rng.choice([0, T0_MS + rng.randrange(MIN)]),
        rng.randrange(2),
    )


def test_merge_is_associative_and_commutative() -> None:
    rng = random.Random(3)
    for _ in range(200):
        a, b, c = (_random_stats(rng) for _ in range(3))
        assert merge(merge(a, b), c) == merge(a, merge(b, c))
        assert merge(a, b) == merge(b, a)
        assert merge(a, MinuteStats()) == a


def test_batches_merged_equal_one_fold() -> None:
    rng = random.Random(5)
    events = [
        share(T0_MS + rng.randrange(5 * MIN), worker=f"w{rng.randrange(3)}",
              status=rng.choice(["accepted", "accepted", "rejected", "stale"]),
              difficulty=rng.uniform(1, 10), actual=rng.choice([None, rng.uniform(1, 99)]))
        for _ in range(500)
    ]
    whole = fold_shares(events)
    table: MinuteTable = MinuteTable()
    for i in range(0, len(events), 37):
        table.apply(fold_shares(events[i : i + 37]))
    assert {k: table.get(k) for k in whole} == whole


def test_table_reports_rows_it_no_longer_holds() -> None:
    table: MinuteTable = MinuteTable(resident_minutes=2)
    key_old = ("main", "m1", "w1", T0_MS)
    table.apply({key_old: MinuteStats(accepted=1, last_share_ms=T0_MS)})
    assert table.missing([key_old]) == []  # fresh store: nothing to load
    assert table.evict(T0_MS + 10 * MIN) == 1
    assert table.get(key_old) is None
    assert table.missing([key_old, ("main", "m1", "w1", T0_MS + 10 * MIN)]) == [key_old]
    table.load({key_old: MinuteStats(accepted=1, last_share_ms=T0_MS)})  # from storage
    changed = table.apply({key_old: MinuteStats(accepted=2, last_share_ms=T0_MS + 5)})
    assert changed[key_old].accepted == 3  # absolute, ready for an idempotent upsert


def test_table_after_restart_asks_for_every_older_row() -> None:
    table: MinuteTable = MinuteTable(storage_floor_ms=T0_MS + MIN)
    assert table.missing([("main", "m1", "w1", T0_MS)]) == [("main", "m1", "w1", T0_MS)]
    assert table.missing([("main", "m1", "w1", T0_MS + MIN)]) == []
