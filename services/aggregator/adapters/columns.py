"""A batch's writes shaped for SQL: merged across partitions, as sorted column arrays.

The store sends each table's rows as column arrays (`*_columns`) in one
statement. Arrays are sorted by primary key: concurrent writers (two members
briefly sharing a pool's minute rows) then lock rows in the same order and
cannot deadlock each other. Times travel as integer epoch milliseconds; SQL
turns them into timestamptz exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from ..consume.writes import OffsetMove, PartitionWrite, WorkerStatusRow
from ..domain.blocks import BlockRecord
from ..domain.minutes import MinuteStats, PoolMinuteKey, WorkerKey, WorkerMinuteKey, merge

__all__ = [
    "MergedWrite",
    "block_columns",
    "claim_columns",
    "merge_writes",
    "minute_columns",
    "offset_columns",
    "pool_columns",
    "worker_columns",
]


@dataclass(slots=True)
class MergedWrite:
    worker_deltas: dict[WorkerMinuteKey, MinuteStats] = field(default_factory=dict)
    pool_deltas: dict[PoolMinuteKey, MinuteStats] = field(default_factory=dict)
    pool_activity: dict[PoolMinuteKey, list[int]] = field(default_factory=dict)
    blocks: dict[str, tuple[BlockRecord, int]] = field(default_factory=dict)  # hash -> (record, partition)
    workers: dict[WorkerKey, WorkerStatusRow] = field(default_factory=dict)
    offsets: list[tuple[OffsetMove, int]] = field(default_factory=list)  # (move, watermark_ms)


def _gather(into: dict, deltas: Mapping) -> None:  # type: ignore[type-arg]
    """Like merge_deltas, but shares the source rows until a key repeats (then a new
    merged row is made): cheaper for worker rows, which one partition owns."""
    for key, stats in deltas.items():
        row = into.get(key)
        into[key] = stats if row is None else merge(row, stats)


def merge_writes(writes: Iterable[PartitionWrite]) -> MergedWrite:
    """One write for several partitions. A miner's rows live in one partition, but a
    pool's minute rows get a delta from every partition carrying its miners."""
    out = MergedWrite()
    for w in writes:
        _gather(out.worker_deltas, w.worker_deltas)
        _gather(out.pool_deltas, w.pool_deltas)
        for key, (miners, workers) in w.pool_activity.items():
            counts = out.pool_activity.setdefault(key, [0, 0])
            counts[0] += miners
            counts[1] += workers
        for block_hash, record in w.blocks.items():
            out.blocks[block_hash] = (record, w.partition)
        for row in w.workers:
            out.workers[row.key] = row
        out.offsets.extend((move, w.watermark_ms) for move in w.offsets)
    return out


def minute_columns(deltas: Mapping[WorkerMinuteKey, MinuteStats]) -> tuple[list, ...]:  # type: ignore[type-arg]
    """miner_metrics columns: pool, miner, worker, minute_ms, accepted, rejected, stale,
    difficulty_accepted, best_difficulty, last_share_ms (None = no share), blocks_found."""
    keys = sorted(deltas)
    rows = [deltas[k] for k in keys]
    return (
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys],
        [r.accepted for r in rows], [r.rejected for r in rows], [r.stale for r in rows],
        [r.difficulty_accepted for r in rows], [r.best_seen for r in rows],
        [r.last_share_ms or None for r in rows], [r.blocks_found for r in rows],
    )


def pool_columns(deltas: Mapping[PoolMinuteKey, MinuteStats],
                 activity: Mapping[PoolMinuteKey, list[int]]) -> tuple[list, ...]:  # type: ignore[type-arg]
    """pool_metrics columns: pool, minute_ms, accepted, rejected, stale, difficulty_accepted,
    best_difficulty, blocks_found, active_miners, active_workers (a minute may carry activity alone:
    shares make the nine minutes after theirs active too)."""
    keys = sorted(deltas.keys() | activity.keys())
    none = MinuteStats()
    rows = [deltas.get(k, none) for k in keys]
    counts = [activity.get(k, (0, 0)) for k in keys]
    return (
        [k[0] for k in keys], [k[1] for k in keys],
        [r.accepted for r in rows], [r.rejected for r in rows], [r.stale for r in rows],
        [r.difficulty_accepted for r in rows], [r.best_seen for r in rows], [r.blocks_found for r in rows],
        [c[0] for c in counts], [c[1] for c in counts],
    )


def block_columns(blocks: Mapping[str, tuple[BlockRecord, int]]) -> tuple[list, ...]:  # type: ignore[type-arg]
    """blocks columns: hash, pool, height, miner, worker, network_difficulty, reward,
    status, found_at_ms, status_at_ms, source_partition."""
    cols: tuple[list, ...] = tuple([] for _ in range(11))  # type: ignore[type-arg]
    for block_hash in sorted(blocks):
        b, partition = blocks[block_hash]
        for col, value in zip(cols, (b.hash, b.pool, b.height, b.miner, b.worker,
                                     b.network_difficulty, b.reward, b.status, b.found_at_ms,
                                     b.status_ts_ms, partition)):
            col.append(value)
    return cols


def worker_columns(rows: Mapping[WorkerKey, WorkerStatusRow]) -> tuple[list, ...]:  # type: ignore[type-arg]
    """worker_status columns: pool, miner, worker, last_share_ms, offline_after_ms,
    connected, connected_ms, connections (JSON text), source_partition, active_base_ms, active_minutes."""
    cols: tuple[list, ...] = tuple([] for _ in range(11))  # type: ignore[type-arg]
    for key in sorted(rows):
        r = rows[key]
        connections = orjson.dumps({n: [ts, c] for n, (ts, c) in r.connections.items()}).decode()
        base_ms, minutes = r.activity if r.activity is not None else (None, None)
        for col, value in zip(cols, (r.pool, r.miner, r.worker, r.last_share_ms, r.offline_after_ms,
                                     r.connected, r.connected_ms, connections, r.partition, base_ms, minutes)):
            col.append(value)
    return cols


def claim_columns(writes: Iterable[PartitionWrite]) -> tuple[list, ...]:  # type: ignore[type-arg]
    """The compare-and-set: topic, partition, expected next_offset, sorted."""
    claims = sorted((key, offset) for w in writes for key, offset in w.claims.items())
    return [k[0] for k, _ in claims], [k[1] for k, _ in claims], [o for _, o in claims]


def offset_columns(moves: Iterable[tuple[OffsetMove, int]]) -> tuple[list, ...]:  # type: ignore[type-arg]
    """aggregator_offsets columns: topic, partition, next_offset, last_record_ts_ms, watermark_ms."""
    cols: tuple[list, ...] = tuple([] for _ in range(5))  # type: ignore[type-arg]
    for move, watermark in sorted(moves, key=lambda mw: (mw[0].topic, mw[0].partition)):
        for col, value in zip(cols, (move.topic, move.partition, move.next_offset,
                                     move.last_record_ts_ms, watermark or None)):
            col.append(value)
    return cols
