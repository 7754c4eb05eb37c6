"""One input partition's share of a batch, folded into its model (pure: no I/O).

Within a batch the partition's shares go in first, then its blocks, then its
miner events, each in offset order. Share counting depends only on the order
of the shares (dedup, then lateness against the share watermark), so the
figures do not depend on how the stream happens to be cut into batches.

The model is mutated here, before the figures are durable. If the write then
fails, the caller throws the partition's model away and rebuilds it from the
database (see partitions.py): never applying a batch twice in memory is then
a matter of construction, not of careful undo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from shared.events import BlockEvent, Event, MinerEvent
from shared.kafka.consumer import Record

from ..domain.minutes import WorkerKey
from ..domain.model import BlockBatchResult, PoolAggregate, ShareBatchResult
from ..domain.share import Share
from .columnar_decode import ColumnarEvents, ShareColumns
from .columnar_fold import ingest_columns
from .writes import OffsetMove, PartitionWrite, copy_block, merge_deltas, worker_status_rows

__all__ = ["Folded", "TopicRun", "fold_partition"]

_timestamp = attrgetter("timestamp")


@dataclass(slots=True)
class Folded:
    write: PartitionWrite
    shares: ShareBatchResult | None = None
    blocks: BlockBatchResult | None = None
    connections: set[WorkerKey] = field(default_factory=set)  # workers with fresh miner events
    miner_duplicates: int = 0
    newest_share_ms: int = 0


TopicRun: TypeAlias = tuple[str, Sequence[Record], Sequence["Event | Share | None"]]


def fold_partition(
    model: PoolAggregate,
    partition: int,
    runs: Iterable[TopicRun],
    expected: dict[str, int],
) -> Folded:
    """Fold the partition's records into `model`: one run per topic, (topic, its records in
    offset order as a fetch returns them, their events aligned; None = dead-lettered).

    `expected` holds the stored next offset of each of the partition's topics;
    every topic with records moves past its last record, dead letters included.
    """
    shares: list[Share] = []
    blocks: list[BlockEvent] = []
    miners: list[MinerEvent] = []
    next_offsets: dict[str, int] = {}
    last_ts: dict[str, int] = {}
    columns: ShareColumns | None = None  # a columnar decode's shares: `share_rows` into them
    share_rows: list[npt.NDArray[np.int64]] = []
    for topic, records, events in runs:
        if not records:
            continue
        next_offsets[topic] = records[-1].offset + 1
        stamps = [ts for ts in map(_timestamp, records) if ts is not None]
        if stamps:
            last_ts[topic] = max(stamps)
        if isinstance(events, ColumnarEvents):
            if columns is not None and events.columns is not columns:
                raise ValueError("a partition's runs come from one decoded batch")
            columns = events.columns
            rows = events.rows
            share_rows.append(rows)
            for event in events.others():
                (blocks if event.type == "block" else miners).append(event)  # type: ignore[arg-type]
            if len(rows) and topic in last_ts:
                model.share_arrival_ms = max(model.share_arrival_ms or 0, last_ts[topic])
            continue
        shares_before = len(shares)
        for event in events:
            if event is None:
                continue
            kind = event.type
            if kind == "share":
                shares.append(event)  # type: ignore[arg-type]
            elif kind == "block":
                blocks.append(event)  # type: ignore[arg-type]
            else:
                miners.append(event)  # type: ignore[arg-type]
        if len(shares) > shares_before and topic in last_ts:
            model.share_arrival_ms = max(model.share_arrival_ms or 0, last_ts[topic])

    write = PartitionWrite(partition, watermark_ms=0)
    folded = Folded(write)
    touched: set[WorkerKey] = set()
    rows = np.concatenate(share_rows) if share_rows else np.zeros(0, np.int64)
    if shares or len(rows):
        if columns is not None and len(rows):
            if shares:
                raise ValueError("a partition's runs are all columnar or all records")
            result = folded.shares = ingest_columns(model, columns, rows)
            folded.newest_share_ms = int(columns.ts[rows].max())
        else:
            result = folded.shares = model.ingest_shares(shares)
            folded.newest_share_ms = max(s.ts_ms for s in shares)
        write.worker_deltas = result.worker_deltas
        write.pool_deltas = result.pool_deltas
        write.pool_activity = result.activity
        touched.update((p, m, w) for p, m, w, _ in result.worker_deltas)
    if blocks:
        block_result = folded.blocks = model.ingest_blocks(blocks)
        # Block counts join the share deltas in new dicts: the results stay the model's own.
        write.worker_deltas = merge_deltas(merge_deltas({}, write.worker_deltas),
                                           block_result.worker_deltas)
        write.pool_deltas = merge_deltas(merge_deltas({}, write.pool_deltas), block_result.pool_deltas)
        for update in block_result.updates:
            write.blocks[update.block.hash] = copy_block(update.block)
    if miners:
        folded.miner_duplicates = len(miners) - model.ingest_miner_events(miners)
        folded.connections = {(e.pool, e.miner, e.worker) for e in miners}
        touched |= folded.connections

    write.watermark_ms = model.watermark_ms
    write.id_journals = model.dedup.take_journals()
    write.claims = {(topic, partition): offset for topic, offset in expected.items()}
    write.workers = worker_status_rows(model.liveness, model.activity, sorted(touched), partition)
    write.offsets = [
        OffsetMove(topic, partition, expected[topic], next_offset, last_ts.get(topic))
        for topic, next_offset in sorted(next_offsets.items())
    ]
    return folded
