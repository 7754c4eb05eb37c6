"""What a new owner of an input partition reads back from PostgreSQL.

- its workers' liveness rows (`worker_status`, with each node's connections),
- their minute history for the windows and liveness rates: per minute for
  the last hour before the partition's watermark, per hour before that (the
  window accumulator keeps hours beyond its last hour anyway), which keeps
  the read to ~84 rows per worker for a whole day,
- its newest blocks with their status and when it was reported.

Everything is selected by `source_partition` (stored with each row), not by
recomputing Kafka's partitioner: producers in other languages partition keys
differently, and the row knows where its events came from.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg

from ..consume.ports import StoredPartition
from ..consume.writes import WorkerStatusRow
from ..domain.blocks import BlockRecord
from ..domain.minutes import MINUTE_MS, MinuteStats, difficulty_units

__all__ = ["load_restore"]

_MS: Final = "(extract(epoch FROM {}) * 1000)::bigint"

_WORKERS: Final = f"""
SELECT pool, miner, worker, {_MS.format("last_share_at")} AS last_ms,
       {_MS.format("offline_after")} AS offline_ms, connected,
       {_MS.format("connected_at")} AS connected_ms, connections, active_base_ms, active_minutes
FROM worker_status WHERE source_partition = $1
"""

# $2: start of the history, $3: start of the last hour (kept per minute), $4: watermark.
_MINUTES: Final = f"""
SELECT m.pool, m.miner, m.worker,
       {_MS.format("CASE WHEN m.ts >= $3 THEN m.ts ELSE date_bin('1 hour', m.ts, timestamptz 'epoch') END")}
           AS bucket_ms,
       sum(m.accepted)::bigint AS accepted, sum(m.rejected)::bigint AS rejected,
       sum(m.stale)::bigint AS stale, sum(m.difficulty_accepted)::float8 AS difficulty,
       max(m.best_difficulty)::float8 AS best, {_MS.format("max(m.last_share_at)")} AS last_ms
FROM miner_metrics m
JOIN worker_status w ON w.pool = m.pool AND w.miner = m.miner AND w.worker = m.worker
WHERE w.source_partition = $1 AND m.ts >= $2 AND m.ts <= $4
GROUP BY 1, 2, 3, 4
"""

_BLOCKS: Final = f"""
SELECT pool, hash, height, miner, worker, network_difficulty, reward::float8 AS reward, status,
       {_MS.format("coalesce(status_at, found_at)")} AS status_ts_ms, {_MS.format("found_at")} AS found_at_ms
FROM blocks WHERE source_partition = $1
ORDER BY found_at DESC, hash DESC LIMIT $2
"""


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _ts(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


async def load_restore(
    conn: asyncpg.Connection,
    partition: int,
    *,
    watermark_ms: int,
    history_minutes: int,
    max_blocks: int,
) -> StoredPartition:
    """Everything but the dedup journals (id_journal.py)."""
    out = StoredPartition()
    last_minute = watermark_ms - watermark_ms % MINUTE_MS
    for r in await conn.fetch(_WORKERS, partition):
        nodes = {n: (int(v[0]), bool(v[1])) for n, v in (r["connections"] or {}).items()}
        out.workers.append(WorkerStatusRow(
            r["pool"], r["miner"], r["worker"], r["last_ms"], r["offline_ms"], r["connected"],
            r["connected_ms"], nodes, partition,
            None if r["active_minutes"] is None else (r["active_base_ms"], bytes(r["active_minutes"])),
        ))
    if watermark_ms > 0 and out.workers:
        rows = await conn.fetch(
            _MINUTES, partition,
            _ts(last_minute - history_minutes * MINUTE_MS),
            _ts(last_minute - 60 * MINUTE_MS),
            _ts(watermark_ms),
        )
        for r in rows:
            out.minutes[(r["pool"], r["miner"], r["worker"], r["bucket_ms"])] = MinuteStats(
                r["accepted"], r["rejected"], r["stale"], difficulty_units(r["difficulty"]),
                r["best"], r["last_ms"] or 0,
            )
    if max_blocks > 0:
        rows = await conn.fetch(_BLOCKS, partition, max_blocks)
        out.blocks = [BlockRecord(**dict(r)) for r in reversed(rows)]
    return out
