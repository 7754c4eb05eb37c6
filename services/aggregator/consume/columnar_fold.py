"""PoolAggregate.ingest_shares on share columns: the same result, the per-event steps as arrays.

Dedup stays the model's own `Deduplicator` (domain/dedup.py), fed the same
(id, event time) sequence in the same order, so the journals written with each
batch and replayed at takeover are identical; lateness is the running maximum
of event times (what ingest_shares' loop computes, exactly); the fold is a
group-by on (worker number, minute) where only groups become Python objects,
listed in the order of their first event as fold_shares lists them; difficulty
sums are exact (columnar_units.py). The model takes the groups as columns
(domain/groups.py) made from the same arrays, so no group is walked to make them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from operator import itemgetter, methodcaller, truediv
from typing import Final

import numpy as np
import numpy.typing as npt

from ..domain.dedup import Deduplicator
from ..domain.groups import MinuteGroups
from ..domain.lateness import MAX_LATENESS_MS
from ..domain.minutes import MINUTE_MS, UNITS_PER_DIFFICULTY, MinuteStats, WorkerMinuteKey
from ..domain.model import PoolAggregate, ShareBatchResult
from .columnar_decode import ShareColumns
from .columnar_units import group_units, unit_parts

__all__ = ["Kept", "fold_columns", "fold_groups", "ingest_columns", "lateness", "round_seconds",
           "shares_per_worker", "stable_hashes"]

I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class Kept:
    rows: I64  # column rows kept (on time or late), in stream order
    late: int
    too_late: int
    watermark_ms: int


def lateness(ts: I64, rows: I64, watermark_ms: int, limit_ms: int = MAX_LATENESS_MS) -> Kept:
    """ingest_shares' lateness loop over the events at `rows`, in order.

    The watermark before each event is the running maximum of the times before it: a
    too-late event is below the watermark, so letting it into the maximum changes nothing."""
    if len(rows) == 0:
        return Kept(rows, 0, 0, watermark_ms)
    t = ts[rows]
    before = np.maximum.accumulate(np.concatenate(([watermark_ms], t)))
    wm = before[:-1]
    too_late = t < wm - limit_ms
    late = (t < wm - wm % MINUTE_MS) & ~too_late
    return Kept(rows[~too_late], int(late.sum()), int(too_late.sum()), int(before[-1]))


def shares_per_worker(cols: ShareColumns) -> float:
    """Shares per distinct worker in the batch: what `auto` decides on."""
    if len(cols) == 0:
        return 0.0
    return len(cols) / len(cols.worker_numbers()[1])


def fold_columns(cols: ShareColumns, rows: I64) -> dict[WorkerMinuteKey, MinuteStats]:
    """fold_shares over the shares at `rows`, in the same dict order."""
    return fold_groups(cols, rows)[0]


def fold_groups(cols: ShareColumns, rows: I64) -> tuple[dict[WorkerMinuteKey, MinuteStats], MinuteGroups]:
    """fold_columns, and the same groups as the model's columns (domain/groups.py)."""
    if len(rows) == 0:
        return {}, MinuteGroups([], [], [], [], [], [])
    numbers, names = cols.worker_numbers()
    worker = numbers[rows]
    ts = cols.ts[rows]
    status = cols.status[rows]
    minute = ts - ts % MINUTE_MS  # numpy's % floors like Python's, negatives included
    first_minute = int(minute.min())
    span = (int(minute.max()) - first_minute) // MINUTE_MS + 1
    uniq, first_seen, inverse = np.unique(worker * span + (minute - first_minute) // MINUTE_MS,
                                          return_index=True, return_inverse=True)
    groups = len(uniq)
    counts = np.bincount(inverse * 3 + status, minlength=3 * groups).reshape(groups, 3)
    last = np.zeros(groups, np.int64)
    np.maximum.at(last, inverse, ts)
    best = np.zeros(groups, np.float64)
    np.maximum.at(best, inverse, cols.actual[rows])
    m, shift = unit_parts(cols.difficulty[rows])
    units = group_units(inverse, groups, np.where(status == 0, m, 0), shift)  # accepted difficulty only
    order = np.argsort(first_seen, kind="stable")  # fold_shares lists groups by their first event
    uniq = uniq[order]
    minutes = (first_minute + (uniq % span) * MINUTE_MS).tolist()
    numbers_at = (uniq // span).tolist()
    workers = list(itemgetter(*numbers_at)(names)) if groups > 1 else [names[numbers_at[0]]]
    keys = map(tuple.__add__, workers, zip(minutes))
    counts = counts[order]
    ordered_units = itemgetter(*order.tolist())(units) if groups > 1 else (units[0],)
    accepted, rejected, stale = counts[:, 0].tolist(), counts[:, 1].tolist(), counts[:, 2].tolist()
    newest = last[order].tolist()
    # Only groups reach Python, built by C-level map/zip: no Python frame per group but MinuteStats'.
    stats = map(MinuteStats, accepted, rejected, stale, ordered_units, best[order].tolist(), newest)
    columns = MinuteGroups(workers, minutes, accepted, counts.sum(axis=1).tolist(),
                           list(map(truediv, ordered_units, repeat(UNITS_PER_DIFFICULTY, groups))), newest)
    return dict(zip(keys, stats, strict=True)), columns


def round_seconds(cols: ShareColumns, rows: I64) -> dict[tuple[str, int], int]:
    """blocks.fold_round_seconds on the shares at `rows`: accepted units per (pool, second)."""
    accepted = rows[cols.status[rows] == 0]
    if len(accepted) == 0:
        return {}
    pools = [cols.pool[i] for i in accepted.tolist()]
    names = list(dict.fromkeys(pools))
    number = dict(zip(names, range(len(names)), strict=True))
    pool = np.fromiter(map(number.__getitem__, pools), np.int64, len(pools))
    second = cols.ts[accepted] // 1000
    first = int(second.min())
    span = int(second.max()) - first + 1
    uniq, first_seen, inverse = np.unique(pool * span + (second - first), return_index=True, return_inverse=True)
    m, shift = unit_parts(cols.difficulty[accepted])
    units = group_units(inverse, len(uniq), m, shift)
    order = np.argsort(first_seen, kind="stable").tolist()  # fold_round_seconds' order: first event first
    keys = uniq.tolist()
    return {(names[keys[g] // span], first + keys[g] % span): units[g] for g in order}


def stable_hashes(event_ids: Iterable[str]) -> I64:
    """stable_hash64 of every id (blake2b, 8 bytes, little-endian signed), by C-level maps."""
    digests = map(_digest, map(_blake2b_8, map(str.encode, event_ids)))
    return np.frombuffer(b"".join(digests), "<i8").astype(np.int64)


_blake2b_8: Final = partial(hashlib.blake2b, digest_size=8)
_digest: Final = methodcaller("digest")


def _repeats(dedup: Deduplicator, cols: ShareColumns, rows: I64) -> npt.NDArray[np.bool_]:
    """dedup.seen_before(id, ts) for each row in order: the same answers, state and journal."""
    ids = map(cols.event_id.__getitem__, rows.tolist())
    ts = cols.ts[rows].tolist()
    if not dedup.stable_hashing:
        return np.fromiter(map(dedup.seen_before, ids, ts), np.bool_, len(ts))
    # The service's dedup hashes with stable_hash64: the whole batch's ids hashed in one pass.
    return np.array(dedup.seen_hashes(stable_hashes(ids).tolist(), ts), np.bool_)


def ingest_columns(model: PoolAggregate, cols: ShareColumns, rows: I64) -> ShareBatchResult:
    """model.ingest_shares(the shares at `rows`), with the same result and the same model after it."""
    result = ShareBatchResult(received=len(rows))
    fresh = rows[~_repeats(model.dedup.of("share"), cols, rows)]
    result.duplicates = len(rows) - len(fresh)
    kept = lateness(cols.ts, fresh, model.watermark_ms, model.max_lateness_ms)
    result.late, result.too_late = kept.late, kept.too_late
    model.watermark_ms = kept.watermark_ms
    deltas, groups = fold_groups(cols, kept.rows)
    model.apply_fold(result, deltas, round_seconds(cols, kept.rows), groups)
    return result
