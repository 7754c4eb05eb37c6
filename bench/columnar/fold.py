"""The per (pool, miner, worker, minute) group-by of a batch of share columns.

Equal to domain.minutes.fold_shares on the same shares (counts, difficulty units,
best, last share), but only the groups become Python objects: the events stay
in arrays (np.unique on an int key, bincount for counts, ufunc.at for maxima,
units.group_units for the exact difficulty sums).
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np
import numpy.typing as npt

from services.aggregator.domain.minutes import MINUTE_MS, MinuteStats, WorkerKey, WorkerMinuteKey

from .decode import ShareColumns
from .units import group_units, unit_parts

__all__ = ["WorkerIndex", "fold_columns"]


class WorkerIndex(dict[WorkerKey, int]):
    """(pool, miner, worker) -> a dense int, kept across batches (new keys numbered on lookup)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys_in_order: list[WorkerKey] = []

    def __missing__(self, key: WorkerKey) -> int:
        index = self[key] = len(self.keys_in_order)
        self.keys_in_order.append(key)
        return index

    def lookup(self, cols: ShareColumns) -> npt.NDArray[np.int64]:
        """Every event's worker number (one C-level map over the batch's key tuples)."""
        keys = zip(cols.pool, cols.miner, cols.worker, strict=True)
        return np.fromiter(map(self.__getitem__, keys), np.int64, len(cols))


def fold_columns(
    cols: ShareColumns, index: WorkerIndex, rows: npt.NDArray[np.int64] | None = None
) -> dict[WorkerMinuteKey, MinuteStats]:
    """fold_shares over the shares at `rows` (all if None), as a dict of groups."""
    # Numbering every event (not only `rows`) is cheaper than selecting the key tuples first;
    # a worker whose only events were dropped just holds a number.
    worker = index.lookup(cols) if rows is None else index.lookup(cols)[rows]
    ts = cols.ts if rows is None else cols.ts[rows]
    if len(ts) == 0:
        return {}
    status = cols.status if rows is None else cols.status[rows]
    minute = ts - ts % MINUTE_MS  # numpy's % floors like Python's, negatives included
    first = int(minute.min())
    span = (int(minute.max()) - first) // MINUTE_MS + 1
    uniq, inverse = np.unique(worker * span + (minute - first) // MINUTE_MS, return_inverse=True)
    groups = len(uniq)
    counts = np.bincount(inverse * 3 + status, minlength=3 * groups).reshape(groups, 3)
    last = np.zeros(groups, np.int64)
    np.maximum.at(last, inverse, ts)
    best = np.zeros(groups, np.float64)
    np.maximum.at(best, inverse, cols.actual if rows is None else cols.actual[rows])
    m, shift = unit_parts(cols.difficulty if rows is None else cols.difficulty[rows])
    m = np.where(status == 0, m, 0)  # accepted difficulty only
    units = group_units(inverse, groups, m, shift)
    # Only groups reach Python: built with C-level map/zip, no per-group Python frame but
    # MinuteStats' own __init__ (2-3 us a group was the cost of a plain for loop here).
    minutes = (first + (uniq % span) * MINUTE_MS).tolist()
    numbers = (uniq // span).tolist()
    names = itemgetter(*numbers)(index.keys_in_order) if groups > 1 else (index.keys_in_order[numbers[0]],)
    keys = map(tuple.__add__, names, zip(minutes))
    stats = map(MinuteStats, counts[:, 0].tolist(), counts[:, 1].tolist(), counts[:, 2].tolist(), units,
                best.tolist(), last.tolist())
    return dict(zip(keys, stats))  # type: ignore[arg-type]
