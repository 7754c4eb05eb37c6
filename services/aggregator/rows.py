"""What one batch writes to PostgreSQL, as plain data (pure: no I/O).

A `PartitionWrite` is the outcome of folding one input partition's records of
a batch: minute deltas, block states, worker liveness rows and the offsets the
partition moves from and to. The store claims every partition of the batch,
drops those it no longer owns, merges the rest with `merge_writes` and sends
each table's rows as column arrays (`*_columns`) in one statement.

Column arrays are sorted by primary key: concurrent writers (two members
briefly sharing a pool's minute rows) then lock rows in the same order and
cannot deadlock each other. Times travel as integer epoch milliseconds; SQL
turns them into timestamptz exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import orjson

from .domain.blocks import BlockRecord
from .domain.dedup import IdJournal
from .domain.liveness import Liveness
from .domain.minutes import (
    MinuteStats,
    PoolMinuteKey,
    WorkerKey,
    WorkerMinuteKey,
    merge,
    merge_into,
)

__all__ = [
    "MergedWrite",
    "OffsetMove",
    "PartitionWrite",
    "WorkerStatusRow",
    "block_columns",
    "claim_columns",
    "merge_deltas",
    "merge_writes",
    "minute_columns",
    "offset_columns",
    "pool_columns",
    "worker_columns",
    "worker_status_rows",
]


@dataclass(slots=True, frozen=True)
class OffsetMove:
    """One input topic-partition: from the stored position to past the batch's last record."""

    topic: str
    partition: int
    expected: int  # next_offset as stored when the batch was read (compare-and-set)
    next_offset: int
    last_record_ts_ms: int | None


@dataclass(slots=True, frozen=True)
class WorkerStatusRow:
    pool: str
    miner: str
    worker: str
    last_share_ms: int | None
    offline_after_ms: int
    connected: bool | None  # None: no connection event seen
    connected_ms: int | None
    connections: Mapping[str, tuple[int, bool]]
    partition: int

    @property
    def key(self) -> WorkerKey:
        return (self.pool, self.miner, self.worker)


@dataclass(slots=True)
class PartitionWrite:
    partition: int
    watermark_ms: int
    offsets: list[OffsetMove] = field(default_factory=list)
    # Stored next offset of EVERY topic of the partition, as read at takeover: the
    # batch writes only if none moved (a move means another member took over).
    claims: dict[tuple[str, int], int] = field(default_factory=dict)
    worker_deltas: dict[WorkerMinuteKey, MinuteStats] = field(default_factory=dict)
    pool_deltas: dict[PoolMinuteKey, MinuteStats] = field(default_factory=dict)
    blocks: dict[str, BlockRecord] = field(default_factory=dict)  # by hash: state after the batch
    workers: list[WorkerStatusRow] = field(default_factory=list)
    # What the partition's deduplicators were fed in this batch, by event type.
    id_journals: dict[str, IdJournal] = field(default_factory=dict)


@dataclass(slots=True)
class MergedWrite:
    worker_deltas: dict[WorkerMinuteKey, MinuteStats] = field(default_factory=dict)
    pool_deltas: dict[PoolMinuteKey, MinuteStats] = field(default_factory=dict)
    blocks: dict[str, tuple[BlockRecord, int]] = field(default_factory=dict)  # hash -> (record, partition)
    workers: dict[WorkerKey, WorkerStatusRow] = field(default_factory=dict)
    offsets: list[tuple[OffsetMove, int]] = field(default_factory=list)  # (move, watermark_ms)


def merge_deltas(into: dict, deltas: Mapping) -> dict:  # type: ignore[type-arg]
    """Add minute deltas into `into` (copying, so the sources stay untouched)."""
    for key, stats in deltas.items():
        row = into.get(key)
        if row is None:
            into[key] = stats.copy()
        else:
            merge_into(row, stats)
    return into


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
        for block_hash, record in w.blocks.items():
            out.blocks[block_hash] = (record, w.partition)
        for row in w.workers:
            out.workers[row.key] = row
        out.offsets.extend((move, w.watermark_ms) for move in w.offsets)
    return out


def worker_status_rows(
    liveness: Liveness, keys: Iterable[WorkerKey], partition: int
) -> list[WorkerStatusRow]:
    """Liveness rows of the workers a batch touched (no other worker's deadline moved)."""
    rows = []
    for key in keys:
        deadline = liveness.offline_deadline_ms(key)
        if deadline is None:
            continue
        nodes, connected_ms = liveness.connection_state(key) or ({}, 0)
        rows.append(WorkerStatusRow(
            key[0], key[1], key[2],
            last_share_ms=liveness.last_share_ms(key),
            offline_after_ms=deadline,
            connected=any(c for _, c in nodes.values()) if nodes else None,
            connected_ms=connected_ms or None,
            connections=nodes,
            partition=partition,
        ))
    return rows


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


def pool_columns(deltas: Mapping[PoolMinuteKey, MinuteStats]) -> tuple[list, ...]:  # type: ignore[type-arg]
    """pool_metrics columns: pool, minute_ms, accepted, rejected, stale,
    difficulty_accepted, best_difficulty, blocks_found."""
    keys = sorted(deltas)
    rows = [deltas[k] for k in keys]
    return (
        [k[0] for k in keys], [k[1] for k in keys],
        [r.accepted for r in rows], [r.rejected for r in rows], [r.stale for r in rows],
        [r.difficulty_accepted for r in rows], [r.best_seen for r in rows], [r.blocks_found for r in rows],
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
    connected, connected_ms, connections (JSON text), source_partition."""
    cols: tuple[list, ...] = tuple([] for _ in range(9))  # type: ignore[type-arg]
    for key in sorted(rows):
        r = rows[key]
        connections = orjson.dumps({n: [ts, c] for n, (ts, c) in r.connections.items()}).decode()
        for col, value in zip(cols, (r.pool, r.miner, r.worker, r.last_share_ms, r.offline_after_ms,
                                     r.connected, r.connected_ms, connections, r.partition)):
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


def snapshot_block(record: BlockRecord) -> BlockRecord:
    """A copy of a ledger record: the ledger keeps mutating its own."""
    return replace(record)
