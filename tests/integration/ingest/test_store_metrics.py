"""MetricsStore against real PostgreSQL: idempotent batch writes, the miner row upsert, range reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.ingest.adapters.metrics_store import MetricsStore, TimeRange
from shared.metric_envelopes import (
    MetricEnvelope,
    MinerReportEnvelope,
    PerformanceEnvelope,
)

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
MINUTE = NOW.replace(second=0)


@pytest.fixture
def pool(migrated_pool: asyncpg.Pool) -> asyncpg.Pool:
    return migrated_pool


def metric(name: str = "m", value: float = 1.0, ago_s: int = 0, **labels: str) -> MetricEnvelope:
    return MetricEnvelope(id=uuid.uuid4(), ts=NOW - timedelta(seconds=ago_s), name=name, type="gauge",
                          value=value, labels=labels)


def report(ts: datetime = MINUTE, **fields: object) -> MinerReportEnvelope:
    return MinerReportEnvelope(id=uuid.uuid4(), ts=ts, pool="main", miner="alice", worker="rig1", **fields)  # type: ignore[arg-type]


async def test_replayed_batch_adds_no_rows(pool: asyncpg.Pool) -> None:
    store = MetricsStore(pool)
    batch = [
        metric("a", 1, host="x"), metric("a", 2, host="y"), metric("b", 3),
        PerformanceEnvelope(id=uuid.uuid4(), ts=NOW, host="h1", service="pool", cpu_usage=50.0,
                            network_in_bytes=2**40, labels={"dc": "eu"}),
        report(reported_hashrate=1e12),
    ]
    await store.write(batch)
    await store.write(batch)  # a crash after the insert, before the commit: the batch comes again
    await store.write(batch[1:3])
    assert await pool.fetchval("SELECT count(*) FROM metrics") == 3
    assert await pool.fetchval("SELECT count(*) FROM performance_metrics") == 1
    assert await pool.fetchval("SELECT count(*) FROM miner_metrics") == 1
    row = await pool.fetchrow("SELECT * FROM performance_metrics")
    assert (row["host"], row["service"], row["cpu_usage"], row["network_in_bytes"], row["labels"]) == (
        "h1", "pool", 50.0, 2**40, {"dc": "eu"})


async def test_miner_report_never_clobbers_the_aggregators_counts(pool: asyncpg.Pool) -> None:
    await pool.execute(
        """INSERT INTO miner_metrics (pool, miner, worker, ts, accepted, rejected, stale, difficulty_accepted,
                                      best_difficulty, last_share_at)
           VALUES ('main', 'alice', 'rig1', $1, 10, 2, 1, 655360, 99999, $2)""",
        MINUTE, MINUTE + timedelta(seconds=5),
    )
    store = MetricsStore(pool)
    await store.write([report(MINUTE + timedelta(seconds=30), reported_hashrate=5e12, user_agent="ua/1")])
    await store.write([report(MINUTE + timedelta(seconds=40), share_difficulty=65536.0)])
    row = await pool.fetchrow("SELECT * FROM miner_metrics")
    assert (row["accepted"], row["rejected"], row["stale"], row["difficulty_accepted"], row["best_difficulty"]) == (
        10, 2, 1, 655360, 99999)
    assert row["last_share_at"] == MINUTE + timedelta(seconds=5)
    # Fields a later report leaves out keep their value.
    assert (row["reported_hashrate"], row["share_difficulty"], row["user_agent"]) == (5e12, 65536.0, "ua/1")
    assert row["ts"] == MINUTE


async def test_two_reports_for_one_row_in_one_batch(pool: asyncpg.Pool) -> None:
    store = MetricsStore(pool)
    await store.write([report(reported_hashrate=1.0), report(user_agent="ua"), report(reported_hashrate=2.0)])
    row = await pool.fetchrow("SELECT reported_hashrate, user_agent FROM miner_metrics")
    assert dict(row) == {"reported_hashrate": 2.0, "user_agent": "ua"}


async def test_metric_reads_filter_by_name_labels_and_range(pool: asyncpg.Pool) -> None:
    store = MetricsStore(pool)
    await store.write([
        metric("cpu", 1, ago_s=30, host="a", dc="eu"), metric("cpu", 2, ago_s=20, host="b"),
        metric("cpu", 3, ago_s=10, host="a"), metric("mem", 4, ago_s=10, host="a"),
        metric("cpu", 5, ago_s=7200, host="a"),
    ])
    hour = TimeRange(NOW - timedelta(hours=1), NOW + timedelta(seconds=1))
    rows = await store.metrics(name="cpu", labels={}, within=hour, limit=100)
    assert [r["value"] for r in rows] == [3, 2, 1]  # newest first, the old one outside the range
    rows = await store.metrics(name="cpu", labels={"host": "a"}, within=hour, limit=100)
    assert [r["value"] for r in rows] == [3, 1]
    rows = await store.metrics(name=None, labels={"host": "a"}, within=hour, limit=2)
    assert sorted(r["value"] for r in rows) == [3, 4]
    rows = await store.metrics(name="cpu", labels={"host": "a', 'x"}, within=hour, limit=100)
    assert rows == []


async def test_miner_rows_read_back(pool: asyncpg.Pool) -> None:
    store = MetricsStore(pool)
    await store.write([report(MINUTE - timedelta(minutes=1), reported_hashrate=1.0), report(reported_hashrate=2.0)])
    rows = await store.miner("alice", pool=None, worker=None,
                             within=TimeRange(MINUTE - timedelta(hours=1), MINUTE + timedelta(minutes=1)), limit=10)
    assert [(r["ts"], r["reported_hashrate"], r["accepted"]) for r in rows] == [
        (MINUTE, 2.0, 0), (MINUTE - timedelta(minutes=1), 1.0, 0)]
    assert await store.miner("bob", pool=None, worker=None,
                             within=TimeRange(MINUTE - timedelta(hours=1), MINUTE), limit=10) == []
