"""PostgreSQL writes of the aggregator: one transaction per batch, exactly once.

A batch is ONE call of `chimera_aggregator_write` (migration 0006), which
(1) locks the batch's partitions' rows in `aggregator_offsets` and writes
nothing if any stored offset is not the one this member read (another member
owns that partition now: reported as stale, and the rest written by a second
call), (2) upserts the minute rows additively, the blocks by hash, the touched
workers' liveness, and (3) moves the offsets on. Figures and positions commit
together or not at all, so a crash anywhere, a retry or a rebalance can
neither lose nor double count a record. The deduplicators' journals of the
batch go into the same transaction (id_journal.py), so the ids a new owner
replays always match the stored offsets.

One statement for the figures and offsets (two more for the journals), one
transaction: the pipeline folds the next batch while PostgreSQL works on this
one. Rows travel as column arrays sorted by key (same lock order for every
writer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import asyncpg

from ..consume.ports import StoredPartition, StoredPosition, WriteOutcome
from ..consume.writes import PartitionWrite
from . import offsets
from .columns import (
    block_columns,
    claim_columns,
    merge_writes,
    minute_columns,
    offset_columns,
    pool_columns,
    worker_columns,
)
from .db import db_connection
from .id_journal import DELETE_SQL, INSERT_SQL, journal_columns, load_journals
from .restore import load_restore

__all__ = ["AggregatorStore"]

# The whole batch in one statement (migrations 0006, 0013): one round trip, one transaction.
_WRITE: Final = f"SELECT chimera_aggregator_write({', '.join(f'${i}' for i in range(1, 53))})"  # 52 arguments


class AggregatorStore:
    """The batch path's `BatchStore` (consume/ports.py) over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, group: str, *, timeout_s: float = 30.0,
                 dedup_horizon_ms: int = 10 * 60_000, restore_minutes: int = 24 * 60,
                 restore_blocks: int = 4096) -> None:
        self._pool = pool
        self.group = group
        self._timeout_s = timeout_s
        self._horizon_ms = dedup_horizon_ms
        self._restore_minutes = restore_minutes
        self._restore_blocks = restore_blocks

    async def write(self, writes: Sequence[PartitionWrite]) -> WriteOutcome:
        """One transaction for the whole batch; raises StoreError (nothing written) on failure.

        Partitions another member moved on are left out (and reported); the rest is
        written, by a second call in the rare case that some were stale."""
        partitions = tuple(sorted(w.partition for w in writes))
        outcome = WriteOutcome()
        remaining = list(writes)
        async with db_connection(self._pool, "batch write", timeout_s=self._timeout_s,
                                 partitions=partitions) as conn:
            while remaining:
                merged = merge_writes(remaining)
                args = (*claim_columns(remaining), *minute_columns(merged.worker_deltas),
                        *pool_columns(merged.pool_deltas, merged.pool_activity), *block_columns(merged.blocks),
                        *worker_columns(merged.workers), *offset_columns(merged.offsets))
                journals = [(w.partition, kind, j) for w in remaining for kind, j in w.id_journals.items()]
                async with conn.transaction():
                    stale = await conn.fetchval(_WRITE, self.group, *args)
                    if not stale and journals:
                        inserted, expired = journal_columns(journals, self._horizon_ms)
                        await conn.execute(INSERT_SQL, self.group, *inserted)
                        await conn.execute(DELETE_SQL, self.group, *expired)
                if not stale:
                    outcome.rows = {"miner_metrics": len(merged.worker_deltas),
                                    "pool_metrics": len(merged.pool_deltas.keys() | merged.pool_activity.keys()),
                                    "blocks": len(merged.blocks), "worker_status": len(merged.workers),
                                    "aggregator_event_ids": len(journals)}
                    break
                outcome.stale += stale
                remaining = [w for w in remaining if w.partition not in stale]
        outcome.committed = sorted(w.partition for w in remaining)
        outcome.stale.sort()
        return outcome

    async def ensure_offsets(
        self, starts: Mapping[tuple[str, int], int], partitions: tuple[int, ...] = ()
    ) -> dict[tuple[str, int], StoredPosition]:
        async with db_connection(self._pool, "reading offsets", timeout_s=self._timeout_s,
                                 partitions=partitions) as conn:
            return await offsets.ensure(conn, self.group, starts)

    async def load_partition(self, partition: int, watermark_ms: int) -> StoredPartition:
        """The rows, blocks and liveness of the partition (restore.py) and its dedup
        journals of the last horizon (id_journal.py)."""
        async with db_connection(self._pool, "restoring partition state", timeout_s=self._timeout_s,
                                 partitions=(partition,)) as conn:
            data = await load_restore(conn, partition, watermark_ms=watermark_ms,
                                      history_minutes=self._restore_minutes, max_blocks=self._restore_blocks)
            data.journals = await load_journals(conn, self.group, partition, self._horizon_ms)
        return data
