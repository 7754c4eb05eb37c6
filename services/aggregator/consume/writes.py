"""What one batch writes, as plain data (pure: no I/O).

A `PartitionWrite` is the outcome of folding one input partition's records of
a batch: minute deltas, block states, worker liveness rows, the dedup
journals and the offsets the partition moves from and to. The store (behind
the `BatchStore` port) writes all of a batch's partitions in one
transaction; how they become SQL is its business (adapters/columns.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from ..domain.activity import ActivityLedger
from ..domain.blocks import BlockRecord
from ..domain.dedup import IdJournal
from ..domain.liveness import Liveness
from ..domain.minutes import MinuteStats, PoolMinuteKey, WorkerKey, WorkerMinuteKey, merge_into

__all__ = [
    "OffsetMove",
    "PartitionWrite",
    "WorkerStatusRow",
    "copy_block",
    "merge_deltas",
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
    # The worker's share-minutes (activity.py MinuteMask.as_row); None: none known
    activity: tuple[int, bytes] | None = None

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
    # (pool, minute) -> [active miners added, active workers added]
    pool_activity: dict[PoolMinuteKey, list[int]] = field(default_factory=dict)
    blocks: dict[str, BlockRecord] = field(default_factory=dict)  # by hash: state after the batch
    workers: list[WorkerStatusRow] = field(default_factory=list)
    # What the partition's deduplicators were fed in this batch, by event type.
    id_journals: dict[str, IdJournal] = field(default_factory=dict)


def merge_deltas(into: dict, deltas: Mapping) -> dict:  # type: ignore[type-arg]
    """Add minute deltas into `into` (copying, so the sources stay untouched)."""
    for key, stats in deltas.items():
        row = into.get(key)
        if row is None:
            into[key] = stats.copy()
        else:
            merge_into(row, stats)
    return into


def worker_status_rows(
    liveness: Liveness, activity: ActivityLedger, keys: Iterable[WorkerKey], partition: int
) -> list[WorkerStatusRow]:
    """Liveness rows (and share-minutes) of the workers a batch touched (no other worker's moved)."""
    rows = []
    keys = list(keys)
    status = liveness.status
    for key, mask in zip(keys, activity.worker_masks(keys)):  # one gather for the batch, not one per key
        known = status(key)
        if known is None:
            continue
        deadline, last_share_ms, nodes, connected_ms = known
        rows.append(WorkerStatusRow(
            key[0], key[1], key[2],
            last_share_ms=last_share_ms,
            offline_after_ms=deadline,
            connected=any(c for _, c in nodes.values()) if nodes else None,
            connected_ms=connected_ms or None,
            connections=nodes,
            partition=partition,
            activity=mask.as_row() if mask is not None else None,
        ))
    return rows


def copy_block(record: BlockRecord) -> BlockRecord:
    """A copy of a ledger record: the ledger keeps mutating its own."""
    return replace(record)
