"""The metrics API's tables: batch writes for the persister, range reads for the GET endpoints.

Writes are one statement per table per batch (`unnest` of column arrays), all
in one transaction, and idempotent: samples insert on their envelope id with
ON CONFLICT DO NOTHING (migration 0005), miner reports upsert only their own
columns of the minute row, so a replayed batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.ingest.domain.metrics import merge_miner_reports
from shared.metric_envelopes import MetricEnvelope, MinerReportEnvelope, PerformanceEnvelope

AnyEnvelope = MetricEnvelope | PerformanceEnvelope | MinerReportEnvelope

_INSERT_METRICS = """
INSERT INTO metrics (id, name, value, labels, type, ts)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::jsonb[], $5::text[], $6::timestamptz[])
ON CONFLICT (id, ts) DO NOTHING
"""

_INSERT_PERFORMANCE = """
INSERT INTO performance_metrics (id, host, service, cpu_usage, memory_usage, disk_usage,
                                 network_in_bytes, network_out_bytes, load_average, labels, ts)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[],
                     $7::int8[], $8::int8[], $9::float8[], $10::jsonb[], $11::timestamptz[])
ON CONFLICT (id, ts) DO NOTHING
"""

# Only the reported columns: the aggregator owns the share counts of the same row
# and adds to them with its own upsert, so neither clobbers the other.
_UPSERT_MINER = """
INSERT INTO miner_metrics (pool, miner, worker, ts, reported_hashrate, share_difficulty, user_agent)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::float8[], $7::text[])
ON CONFLICT (pool, miner, worker, ts) DO UPDATE SET
    reported_hashrate = COALESCE(EXCLUDED.reported_hashrate, miner_metrics.reported_hashrate),
    share_difficulty  = COALESCE(EXCLUDED.share_difficulty, miner_metrics.share_difficulty),
    user_agent        = COALESCE(EXCLUDED.user_agent, miner_metrics.user_agent)
"""


@dataclass(frozen=True)
class TimeRange:
    start: datetime  # inclusive
    end: datetime  # exclusive


def _columns(rows: Sequence[Any], *getters: str) -> list[list[Any]]:
    return [[getattr(row, g) for row in rows] for g in getters]


class MetricsStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def write(self, envelopes: Sequence[AnyEnvelope]) -> None:
        """Store a batch atomically and idempotently. asyncpg errors propagate to the caller's retry."""
        metrics = [e for e in envelopes if isinstance(e, MetricEnvelope)]
        performance = [e for e in envelopes if isinstance(e, PerformanceEnvelope)]
        miners = merge_miner_reports(e for e in envelopes if isinstance(e, MinerReportEnvelope))
        async with self._pool.acquire() as conn, conn.transaction():
            if metrics:
                await conn.execute(_INSERT_METRICS, *_columns(metrics, "id", "name", "value", "labels", "type", "ts"))
            if performance:
                await conn.execute(_INSERT_PERFORMANCE, *_columns(
                    performance, "id", "host", "service", "cpu_usage", "memory_usage", "disk_usage",
                    "network_in_bytes", "network_out_bytes", "load_average", "labels", "ts"))
            if miners:
                keys = [key for key, _ in miners]
                fields = [row for _, row in miners]
                await conn.execute(
                    _UPSERT_MINER,
                    [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys],
                    [f["reported_hashrate"] for f in fields], [f["share_difficulty"] for f in fields],
                    [f["user_agent"] for f in fields],
                )

    async def metrics(self, *, name: str | None, labels: Mapping[str, str], within: TimeRange,
                      limit: int) -> list[dict[str, Any]]:
        """Newest first, so `limit` keeps the most recent samples."""
        rows = await self._pool.fetch(
            """
            SELECT id, name, value, labels, type, ts FROM metrics
            WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR name = $3) AND labels @> $4::jsonb
            ORDER BY ts DESC, name LIMIT $5
            """,
            within.start, within.end, name, dict(labels), limit,
        )
        return [dict(r) for r in rows]

    async def performance(self, *, host: str | None, service: str | None, within: TimeRange,
                          limit: int) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            """
            SELECT id, host, service, cpu_usage, memory_usage, disk_usage, network_in_bytes,
                   network_out_bytes, load_average, labels, ts
            FROM performance_metrics
            WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR host = $3) AND ($4::text IS NULL OR service = $4)
            ORDER BY ts DESC, host, service LIMIT $5
            """,
            within.start, within.end, host, service, limit,
        )
        return [dict(r) for r in rows]

    async def miner(self, miner: str, *, pool: str | None, worker: str | None, within: TimeRange,
                    limit: int) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            """
            SELECT pool, miner, worker, ts, accepted, rejected, stale, difficulty_accepted, best_difficulty,
                   last_share_at, blocks_found, reported_hashrate, share_difficulty, user_agent
            FROM miner_metrics
            WHERE miner = $1 AND ts >= $2 AND ts < $3
              AND ($4::text IS NULL OR pool = $4) AND ($5::text IS NULL OR worker = $5)
            ORDER BY ts DESC, pool, worker LIMIT $6
            """,
            miner, within.start, within.end, pool, worker, limit,
        )
        return [dict(r) for r in rows]
