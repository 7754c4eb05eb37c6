"""A partition's model rebuilt from what was made durable (pure: no I/O).

What each part of the model needs, and where it comes from:
- lateness: the share watermark, stored with the offsets (exact);
- blocks: the ledger's blocks with their status and status time, so a later
  event for a known hash is recognised (no second `blocks_found`);
- liveness: each worker's connections, and its share rate from its recent
  minute rows (the rate buckets are 15-minute aligned, so absolute minute rows
  fill them as the per-batch deltas did);
- windows: the same minute rows (figures for the snapshot side only: nothing
  persisted depends on them);
- dedup: the journals of the last dedup horizon (what the old owner's
  deduplicators were fed, stored with each batch), replayed in order.
"""

from __future__ import annotations

from typing import Final

from shared.events import BlockEvent

from ..config import AggregatorSettings
from ..domain.activity import MinuteMask
from ..domain.blocks import BlockRecord
from ..domain.dedup import EventIds, stable_hash64
from ..domain.liveness import Liveness
from ..domain.model import PoolAggregate
from .ports import StoredPartition

__all__ = ["new_model", "rebuild_model"]

_NO_FUTURE_CHECK: Final = {"now_ms": 2**62}


def new_model(settings: AggregatorSettings) -> PoolAggregate:
    return PoolAggregate(
        multiplier=settings.hashrate_multiplier,
        # A stable hash: the ids are journaled for whichever process owns the partition next.
        dedup=EventIds(settings.dedup_horizon_ms, hash_fn=stable_hash64, journal=True),
        liveness=Liveness(floor_ms=settings.liveness_floor_ms, ceiling_ms=settings.liveness_ceiling_ms),
        max_lateness_ms=settings.max_lateness_ms,
    )


def _block_event(row: BlockRecord, status: str, ts_ms: int) -> BlockEvent:
    data = {
        "event_id": "restored", "type": "block", "ts": ts_ms, "pool": row.pool, "node": "restored",
        "miner": row.miner, "worker": row.worker, "height": row.height, "hash": row.hash,
        "network_difficulty": row.network_difficulty, "status": status,
    }
    if row.reward is not None:
        data["reward"] = row.reward
    return BlockEvent.model_validate(data, context=_NO_FUTURE_CHECK)


def rebuild_model(settings: AggregatorSettings, data: StoredPartition, watermark_ms: int) -> PoolAggregate:
    model = new_model(settings)
    for kind, in_order in data.journals.items():
        dedup = model.dedup.of(kind)
        for journal in in_order:
            dedup.replay(journal)  # replaying journals nothing new
    model.watermark_ms = watermark_ms
    ledger = model.ledger
    for row in data.blocks:  # oldest first, as they were found
        ledger.observe(_block_event(row, "candidate", row.found_at_ms))
        if row.status != "candidate":
            ledger.observe(_block_event(row, row.status, max(row.status_ts_ms, row.found_at_ms)))
    # Chronological: liveness rate buckets roll forward as the rows go by.
    model.restore_minutes(dict(sorted(data.minutes.items(), key=lambda kv: kv[0][3])))
    model.activity.restore({w.key: MinuteMask.from_row(*w.activity) for w in data.workers if w.activity})
    liveness = model.liveness
    for w in data.workers:
        if w.connections or w.connected_ms:
            liveness.restore_connections(w.key, dict(w.connections), w.connected_ms or 0)
    return model
