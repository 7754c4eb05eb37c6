"""PoolAggregate.ingest_shares with the per-event steps columnar (dedup, lateness, fold,
round seconds); everything per group is today's code, on today's PoolAggregate."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from services.aggregator.domain.minutes import roll_up_pools
from services.aggregator.domain.model import PoolAggregate, ShareBatchResult

from .decode import ShareColumns
from .fold import WorkerIndex, fold_columns
from .prefilter import ColumnarDedup, lateness
from .units import group_units, unit_parts

__all__ = ["ColumnarAggregate", "round_seconds"]


def round_seconds(cols: ShareColumns, rows: npt.NDArray[np.int64]) -> dict[tuple[str, int], int]:
    """blocks.fold_round_seconds on the shares at `rows`: accepted units per (pool, second)."""
    accepted = rows[cols.status[rows] == 0]
    if len(accepted) == 0:
        return {}
    pools = [cols.pool[i] for i in accepted.tolist()]  # one pool in practice: a list pass is cheap
    names = sorted(set(pools))
    number = {name: i for i, name in enumerate(names)}
    pool = np.fromiter(map(number.__getitem__, pools), np.int64, len(pools))
    second = cols.ts[accepted] // 1000
    first = int(second.min())
    span = int(second.max()) - first + 1
    uniq, inverse = np.unique(pool * span + (second - first), return_inverse=True)
    m, shift = unit_parts(cols.difficulty[accepted])
    units = group_units(inverse, len(uniq), m, shift)
    return {(names[k // span], first + k % span): u for k, u in zip(uniq.tolist(), units, strict=True)}


class ColumnarAggregate:
    """A PoolAggregate fed share columns instead of share objects."""

    def __init__(self, model: PoolAggregate | None = None) -> None:
        self.model = model if model is not None else PoolAggregate()
        self.dedup = ColumnarDedup()
        self.index = WorkerIndex()

    def ingest(self, cols: ShareColumns) -> ShareBatchResult:
        model = self.model
        result = ShareBatchResult(received=len(cols))
        fresh = self.dedup.fresh(cols)
        result.duplicates = len(cols) - len(fresh)
        kept = lateness(cols.ts, fresh, model.watermark_ms, model._max_lateness_ms)  # noqa: SLF001
        result.late, result.too_late = kept.late, kept.too_late
        model.watermark_ms = kept.watermark_ms
        deltas = result.worker_deltas = fold_columns(cols, self.index, kept.rows)
        pool_deltas = result.pool_deltas = roll_up_pools(deltas)
        result.activity = model.activity.observe(deltas)
        model._apply(deltas, pool_deltas)  # noqa: SLF001 - the prototype reuses today's per-group step as is
        model.ledger.add_round_seconds(round_seconds(cols, kept.rows))
        return result
