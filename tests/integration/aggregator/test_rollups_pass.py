"""Hourly and daily roll-ups against PostgreSQL: sums of the rows below, idempotent, late changes picked up."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import asyncpg
import pytest

from services.aggregator.consume.results import BatchResult, PartitionResult
from services.aggregator.domain.minutes import MinuteStats
from services.aggregator.domain.model import PoolAggregate, ShareBatchResult
from services.aggregator.outputs.rollups import ROLLUP_TABLES, RollupJob

from .outputs_support import utc_ms

pytestmark = pytest.mark.integration

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW = T0 + 20 * MIN
# Minutes from yesterday 21:00 to today 00:19 (crossing a day boundary).
MINUTES = [T0 - 3 * HOUR + i * MIN for i in range(200)]
WORKERS = [("p1", "alice", "rig1"), ("p1", "alice", "rig2"), ("p1", "bob", ""), ("p2", "carol", "x")]


def minute_rows(seed: int = 7) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    rows = []
    for ts in MINUTES:
        for pool, miner, worker in WORKERS:
            if rnd.random() < 0.2:
                continue  # workers skip minutes
            rows.append((pool, miner, worker, ts, rnd.randint(0, 50), rnd.randint(0, 3), rnd.randint(0, 2),
                         rnd.choice([0.1, 1.5, 3.3, 65536.7]) * rnd.randint(1, 9), rnd.random() * 1e6,
                         ts + rnd.randint(0, 59_999), rnd.random() < 0.01))
    return rows


async def insert_minutes(pool: asyncpg.Pool, rows: list[tuple[Any, ...]]) -> None:
    await pool.executemany(
        "INSERT INTO miner_metrics (pool, miner, worker, ts, accepted, rejected, stale, difficulty_accepted,"
        " best_difficulty, last_share_at, blocks_found) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        [(*r[:3], utc_ms(r[3]), *r[4:9], utc_ms(r[9]), int(r[10])) for r in rows])
    pools: dict[tuple[str, int], list[Any]] = {}
    for r in sorted(rows, key=lambda r: r[3]):
        p = pools.setdefault((r[0], r[3]), [0, 0, 0, 0.0, 0.0, 0, 0])
        p[0] += r[4]
        p[1] += r[5]
        p[2] += r[6]
        p[3] += r[7]
        p[4] = max(p[4], r[8])
        p[5] += int(r[10])
        p[6] += 1  # active workers: those with a row
    await pool.executemany(
        "INSERT INTO pool_metrics (pool, ts, accepted, rejected, stale, difficulty_accepted, best_difficulty,"
        " blocks_found, active_workers, active_miners) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)",
        [(p, utc_ms(ts), *v) for (p, ts), v in pools.items()])


def expected_rollup(rows: list[tuple[Any, ...]], step: int) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Per (pool, miner, worker, bucket): sums over minute rows, difficulty added in ts order."""
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for r in rows:
        groups[(*r[:3], r[3] - r[3] % step)].append(r)
    out = {}
    for key, members in groups.items():
        members.sort(key=lambda r: r[3])
        difficulty = 0.0
        for r in members:
            difficulty += r[7]
        out[key] = (sum(r[4] for r in members), sum(r[5] for r in members), sum(r[6] for r in members),
                    difficulty, max(r[8] for r in members), max(r[9] for r in members),
                    sum(int(r[10]) for r in members), len(members))
    return out


async def stored(pool: asyncpg.Pool, table: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = await pool.fetch(f"SELECT * FROM {table}")
    return {(r["pool"], r["miner"], r["worker"], int(r["ts"].timestamp() * 1000)):
            (r["accepted"], r["rejected"], r["stale"], r["difficulty_accepted"], r["best_difficulty"],
             int(r["last_share_at"].timestamp() * 1000), r["blocks_found"], r["minutes"]) for r in rows}


def job(pool: asyncpg.Pool, now_ms: int = NOW) -> RollupJob:
    return RollupJob(pool, clock_ms=lambda: now_ms)


async def test_rollups_equal_the_sums_of_minute_rows_and_rerunning_changes_nothing(
    migrated_pool: asyncpg.Pool,
) -> None:
    rows = minute_rows()
    await insert_minutes(migrated_pool, rows)
    report = await job(migrated_pool).run_pass(lookback=True)
    assert report.plan.hours == [(NOW - NOW % HOUR - 24 * HOUR, NOW - NOW % HOUR + HOUR)]

    hourly = await stored(migrated_pool, "miner_metrics_hourly")
    assert hourly == expected_rollup(rows, HOUR)
    assert len(hourly) == report.written["miner_metrics_hourly"]
    # a day row sums its hour rows (difficulty in hour order), so it is exact against them
    hour_rows = [(*k[:3], k[3], *v[:3], v[3], v[4], v[5], v[6], v[7]) for k, v in hourly.items()]
    daily = await stored(migrated_pool, "miner_metrics_daily")
    day_expected = expected_rollup([r[:11] for r in hour_rows], DAY)
    assert {k: v[:7] for k, v in daily.items()} == {k: v[:7] for k, v in day_expected.items()}
    assert {k: v[7] for k, v in daily.items()} == {k: v[7] for k, v in expected_rollup(rows, DAY).items()}
    for key, value in daily.items():  # counts exact, difficulty within rounding of the minute sum
        direct = expected_rollup(rows, DAY)[key]
        assert value[:3] == direct[:3] and value[3] == pytest.approx(direct[3], rel=1e-12)
    assert {k[3] for k in daily} == {T0 - DAY, T0}

    pool_hourly = await migrated_pool.fetch(
        "SELECT pool, ts, accepted, active_workers_max, minutes FROM pool_metrics_hourly ORDER BY pool, ts")
    for r in pool_hourly:
        hour_ms = int(r["ts"].timestamp() * 1000)
        members = [x for x in rows if x[0] == r["pool"] and hour_ms <= x[3] < hour_ms + HOUR]
        assert r["accepted"] == sum(x[4] for x in members)
        assert r["active_workers_max"] == max(sum(1 for x in members if x[3] == m) for m in {x[3] for x in members})
    pool_daily = await migrated_pool.fetch("SELECT pool, ts, accepted, minutes FROM pool_metrics_daily")
    assert sum(r["accepted"] for r in pool_daily) == sum(r[4] for r in rows)

    again = await job(migrated_pool).run_pass(lookback=True)
    assert again.written == dict.fromkeys(ROLLUP_TABLES, 0)  # same values: nothing rewritten
    assert again.deleted == dict.fromkeys(ROLLUP_TABLES, 0)
    assert await stored(migrated_pool, "miner_metrics_hourly") == hourly
    assert await stored(migrated_pool, "miner_metrics_daily") == daily


async def test_late_minute_changes_propagate(migrated_pool: asyncpg.Pool) -> None:
    rows = minute_rows(seed=11)
    await insert_minutes(migrated_pool, rows)
    rollups = job(migrated_pool)
    await rollups.run_pass(lookback=True)

    # The aggregator rewrites a minute of yesterday 21:xx (a late share) and persists it...
    late_ts = T0 - 3 * HOUR + 5 * MIN
    await migrated_pool.execute(
        "INSERT INTO miner_metrics (pool, miner, worker, ts, accepted, difficulty_accepted) VALUES"
        " ('p1', 'alice', 'rig1', $1, 1000, 1000) ON CONFLICT (pool, miner, worker, ts) DO UPDATE"
        " SET accepted = miner_metrics.accepted + 1000,"
        " difficulty_accepted = miner_metrics.difficulty_accepted + 1000", utc_ms(late_ts))
    # ... and tells the outputs which minute it changed.
    result = ShareBatchResult(pool_deltas={("p1", late_ts): MinuteStats(accepted=1)})
    rollups.on_batch(BatchResult(partitions={0: PartitionResult(PoolAggregate(), shares=result)}))
    assert rollups.dirty_hours == {T0 - 3 * HOUR}
    report = await rollups.run_pass()  # a regular pass: dirty hour + current and previous hour only
    assert report.plan.hours == [(T0 - 3 * HOUR, T0 - 2 * HOUR), (T0 - HOUR, T0 + HOUR)]
    assert report.written["miner_metrics_hourly"] >= 1 and report.written["miner_metrics_daily"] >= 1

    key = ("p1", "alice", "rig1")
    minute_sum = await migrated_pool.fetchval(
        "SELECT sum(accepted) FROM miner_metrics WHERE (pool, miner, worker) = ($1, $2, $3)"
        " AND ts >= $4 AND ts < $5", *key, utc_ms(T0 - DAY), utc_ms(T0))
    hour_sum = await migrated_pool.fetchval(
        "SELECT sum(accepted) FROM miner_metrics_hourly WHERE (pool, miner, worker) = ($1, $2, $3)"
        " AND ts >= $4 AND ts < $5", *key, utc_ms(T0 - DAY), utc_ms(T0))
    day = await migrated_pool.fetchval(
        "SELECT accepted FROM miner_metrics_daily WHERE (pool, miner, worker) = ($1, $2, $3) AND ts = $4",
        *key, utc_ms(T0 - DAY))
    assert minute_sum == hour_sum == day
    pool_day = await migrated_pool.fetchval(
        "SELECT accepted FROM pool_metrics_daily WHERE pool = 'p1' AND ts = $1", utc_ms(T0 - DAY))
    assert pool_day == sum(r[4] for r in rows if r[0] == "p1" and r[3] < T0)  # pool_metrics not rewritten

    # Without any mark (say the process crashed in between), the lookback pass repairs it.
    await migrated_pool.execute(
        "UPDATE miner_metrics SET stale = stale + 7 WHERE (pool, miner, worker, ts) = ('p1', 'alice', 'rig1', $1)",
        utc_ms(late_ts))
    assert (await rollups.run_pass()).written["miner_metrics_hourly"] == 0
    assert (await rollups.run_pass(lookback=True)).written["miner_metrics_hourly"] == 1
    hourly = await stored(migrated_pool, "miner_metrics_hourly")
    assert hourly[(*key, T0 - 3 * HOUR)][2] == sum(
        r[6] for r in rows if r[:3] == key and T0 - 3 * HOUR <= r[3] < T0 - 2 * HOUR) + 7


async def test_rollup_rows_without_minute_rows_are_deleted(migrated_pool: asyncpg.Pool) -> None:
    rows = minute_rows(seed=3)
    await insert_minutes(migrated_pool, rows)
    rollups = job(migrated_pool)
    await rollups.run_pass(lookback=True)
    await migrated_pool.execute("DELETE FROM miner_metrics WHERE miner = 'bob'")
    report = await rollups.run_pass(lookback=True)
    assert report.deleted["miner_metrics_hourly"] == len({r[3] - r[3] % HOUR for r in rows if r[1] == "bob"})
    assert report.deleted["miner_metrics_daily"] == 2
    assert await migrated_pool.fetchval("SELECT count(*) FROM miner_metrics_hourly WHERE miner = 'bob'") == 0


async def test_the_periodic_task_runs_a_lookback_pass_at_start(migrated_pool: asyncpg.Pool) -> None:
    import asyncio

    await insert_minutes(migrated_pool, minute_rows(seed=5)[:50])
    rollups = RollupJob(migrated_pool, interval_s=0.05, clock_ms=lambda: NOW)
    await rollups.start()
    try:
        for _ in range(100):
            if rollups.last_report is not None:
                break
            await asyncio.sleep(0.02)
    finally:
        await rollups.stop()
        await rollups.stop()  # idempotent
    assert rollups.last_report is not None and rollups.last_report.lookback
    assert await migrated_pool.fetchval("SELECT count(*) FROM miner_metrics_hourly") > 0
