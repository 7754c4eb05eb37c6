"""The per (pool, miner, worker, minute) group-by: the service's (consume/columnar_fold.py)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from services.aggregator.consume.columnar_fold import fold_columns as _fold_rows
from services.aggregator.domain.minutes import MinuteStats, WorkerMinuteKey

from .decode import ShareColumns

__all__ = ["fold_columns"]


def fold_columns(cols: ShareColumns, rows: npt.NDArray[np.int64] | None = None) -> dict[WorkerMinuteKey, MinuteStats]:
    """fold_shares over the shares at `rows` (all if None)."""
    return _fold_rows(cols, np.arange(len(cols), dtype=np.int64) if rows is None else rows)
