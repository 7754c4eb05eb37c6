"""PoolAggregate.ingest_shares on share columns: the service's (consume/columnar_fold.py)."""

from __future__ import annotations

import numpy as np

from services.aggregator.consume.columnar_fold import ingest_columns, round_seconds
from services.aggregator.domain.model import PoolAggregate, ShareBatchResult

from .decode import ShareColumns

__all__ = ["ColumnarAggregate", "round_seconds"]


class ColumnarAggregate:
    """A PoolAggregate fed share columns instead of share objects."""

    def __init__(self, model: PoolAggregate | None = None) -> None:
        self.model = model if model is not None else PoolAggregate()

    def ingest(self, cols: ShareColumns) -> ShareBatchResult:
        return ingest_columns(self.model, cols, np.arange(len(cols), dtype=np.int64))
