"""The stats reader's liveness from `worker_status` (migration 0006), at a fixed instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.ingest.adapters.stats import StatsReader

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
M = NOW.replace(second=0)


async def status(pool: asyncpg.Pool, name: str, miner: str, worker: str, offline_after: datetime) -> None:
    await pool.execute(
        "INSERT INTO worker_status (pool, miner, worker, offline_after, source_partition) VALUES ($1, $2, $3, $4, 7)",
        name, miner, worker, offline_after)


async def test_active_counts_are_online_workers_and_their_miners(migrated_pool: asyncpg.Pool) -> None:
    soon, past = NOW + timedelta(seconds=1), NOW - timedelta(minutes=3)
    await status(migrated_pool, "main", "alice", "rig1", soon)
    await status(migrated_pool, "main", "alice", "rig2", soon + timedelta(hours=1))
    await status(migrated_pool, "main", "bob", "rig1", past)  # offline: bob has no online worker
    await status(migrated_pool, "main", "carol", "", soon)  # unnamed worker
    await status(migrated_pool, "main", "carol", "rig9", NOW)  # the deadline itself: offline
    await status(migrated_pool, "other", "dave", "rig1", soon)
    reader = StatsReader(migrated_pool, hashrate_multiplier=2.0**32)
    stats = await reader.pool_stats("main", now=NOW)
    assert (stats.active_miners, stats.active_workers) == (2, 3)
    assert (await reader.pool_stats("other", now=NOW)).active_workers == 1
    assert (await reader.pool_stats("nobody", now=NOW)).active_miners == 0
    later = await reader.pool_stats("main", now=soon)
    assert (later.active_miners, later.active_workers) == (1, 1)  # only alice's rig2 left


async def test_worker_online_from_status_with_the_old_rule_as_fallback(
    migrated_pool: asyncpg.Pool,
) -> None:
    rows = [("fast", M - timedelta(minutes=1), NOW - timedelta(seconds=2)),
            ("slow", M - timedelta(minutes=14), M - timedelta(minutes=14)),
            ("fresh", M - timedelta(minutes=1), NOW - timedelta(seconds=30)),
            ("stale", M - timedelta(minutes=8), M - timedelta(minutes=8))]
    for worker, ts, last in rows:
        await migrated_pool.execute(
            "INSERT INTO miner_metrics (pool, miner, worker, ts, accepted, difficulty_accepted, last_share_at)"
            " VALUES ('main', 'erin', $1, $2, 1, 1, $3)", worker, ts, last)
    await status(migrated_pool, "main", "erin", "fast", NOW - timedelta(seconds=1))  # stopped: deadline passed
    await status(migrated_pool, "main", "erin", "slow", NOW + timedelta(minutes=2))  # slow but on time
    reader = StatsReader(migrated_pool, hashrate_multiplier=2.0**32)
    stats = await reader.miner_stats("main", "erin", now=NOW)
    assert {w.worker: w.online for w in stats.workers} == {
        "fast": False, "slow": True,  # from worker_status
        "fresh": True, "stale": False,  # no status row: last share within 5 minutes
    }
