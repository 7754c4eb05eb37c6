"""Window sums for all keys of a partition as numpy arrays (issue 15): a PROTOTYPE.

The service's WindowAccumulator (services/aggregator/domain/accumulator.py) costs
~20-50 us of Python per (key, minute) group; at 100,000 workers a batch holds
about one group per worker-minute, so that per-group call bounds the aggregator.
This module holds the same state for every key of a partition in a few arrays
and applies a whole batch of groups with a handful of numpy calls:

- `minute` (rows, 61, 3): the ring of minute slots (minutes head-60 .. head),
- `hour` (rows, 25, 3): the ring of hour slots (hours head_hour-24 .. head_hour),
- `head_m`, `as_of_m` (rows,) int64: newest minute written, minute the key was
  last read or advanced to (both in minutes since the epoch),

each slot holding (accepted count, submitted count, accepted difficulty), the
same rings and slot numbering as WindowAccumulator. The running window sums are
NOT kept: they are recomputed from the rings when read (one batched matmul per
read), which costs nothing per group and leaves no float drift behind.

Why a batch can be applied at once: the rings' final content does not depend on
the order the groups of a batch arrive in. With H the key's head after the batch
(max of its old head and the batch's minutes), a delta for minute t stays in the
minute ring iff t >= H - 60 and in the hour ring iff t // 60 >= H // 60 - 24,
whatever came before or after it (a slot is cleared exactly when the head passes
the minute 61 slots, or hour 25 slots, after the one it held). `as_of` only
clamps reads, and is the max of every minute added or read.

Not covered yet (before it could replace WindowAccumulator in domain/model.py):
- prune: idle rows are never dropped, so rows are never reused or compacted;
- restore from PostgreSQL / checkpoints: no loading of stored minute rows or
  serialising of the arrays (a restore would be one add_groups of the rows);
- keys() and the export paths (export_figures.py) that take WindowAccumulator;
- the caller side: model._apply folds dicts of MinuteStats per group, so the fold's
  output would have to arrive as columns (keys list + arrays) for this to pay;
- capacity grows by copy-doubling (a pause of O(rows) on growth);
- pools: the pool sums would be a second instance (or column sums of workers).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

# Private names reused on purpose: the prototype must keep the service's ring layout.
from services.aggregator.domain.accumulator import (
    _DAY_M,
    _F,
    _HS,
    _MINUTE_WINDOWS,
    _MS,
    WindowTotals,
    _spans,
)
from services.aggregator.domain.minutes import MINUTE_MS
from services.aggregator.domain.windows import WINDOWS

__all__ = ["ArrayWindowAccumulator", "TotalsArrays"]

K = TypeVar("K", bound=Hashable)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_NW: Final = len(WINDOWS)  # 5: 1m, 5m, 15m, 1h, 24h; 24h is the last
_DAY_W: Final = _NW - 1
_WIDTHS_M: Final = np.array(_MINUTE_WINDOWS, dtype=np.int64)  # minute windows' widths
_NO_HEAD: Final = np.iinfo(np.int64).min // 4  # "never written": any minute is after it


def _weight_table() -> F64:
    """[lo, end, head % 61, slot] -> 1.0 if the slot's age (head - slot) % 61 is in [lo, end)."""
    rot = np.arange(_MS)[:, None]
    ages = (rot - np.arange(_MS)[None, :]) % _MS  # (61 rotations, 61 slots)
    lo = np.arange(2)[:, None, None, None]
    end = np.arange(_MS + 1)[None, :, None, None]
    return ((ages[None, None] >= lo) & (ages[None, None] < end)).astype(np.float64)


_WEIGHTS: Final = _weight_table()  # 2 x 62 x 61 x 61 doubles: 3.7 MB
_SLOTS_H: Final = np.arange(_HS, dtype=np.int64)
_FIELDS: Final = np.arange(_F, dtype=np.int64)[None, :]


@dataclass(slots=True, frozen=True)
class TotalsArrays:
    """totals for many keys: row i is keys[i]; columns are WINDOWS in order."""

    as_of_ms: I64  # (n,) the minute each row's sums are valid for (clamped like totals)
    accepted: F64  # (n, 5)
    submitted: F64  # (n, 5)
    difficulty: F64  # (n, 5)
    span_ms: tuple[int, ...]  # nominal spans: the same for every as-of minute


def _repeat_ranges(starts: I64, counts: I64) -> tuple[I64, I64]:
    """(owner index, value) for the ranges starts[i] .. starts[i] + counts[i] - 1, flattened."""
    owner = np.repeat(np.arange(len(starts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts  # position of each range's first element
    values = starts[owner] + (np.arange(len(owner), dtype=np.int64) - first[owner])
    return owner, values


class ArrayWindowAccumulator(Generic[K]):
    """WindowAccumulator's state and semantics for all keys at once (see module docstring)."""

    __slots__ = ("_rows", "as_of_m", "head_m", "hour", "minute")

    def __init__(self, capacity: int = 1024) -> None:
        self._rows: dict[K, int] = {}
        capacity = max(capacity, 1)
        self.minute: F64 = np.zeros((capacity, _MS, _F))
        self.hour: F64 = np.zeros((capacity, _HS, _F))
        self.head_m: I64 = np.full(capacity, _NO_HEAD, dtype=np.int64)
        self.as_of_m: I64 = np.full(capacity, _NO_HEAD, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def _grow(self, need: int) -> None:
        cap = len(self.head_m)
        if need <= cap:
            return
        new_cap = max(need, cap * 2)  # doubling: amortised O(1) copies per key
        minute: F64 = np.zeros((new_cap, _MS, _F))
        hour: F64 = np.zeros((new_cap, _HS, _F))
        minute[:cap] = self.minute
        hour[:cap] = self.hour
        self.minute, self.hour = minute, hour
        self.head_m = np.concatenate([self.head_m, np.full(new_cap - cap, _NO_HEAD, dtype=np.int64)])
        self.as_of_m = np.concatenate([self.as_of_m, np.full(new_cap - cap, _NO_HEAD, dtype=np.int64)])

    def _row_ids(self, keys: Sequence[K]) -> I64:
        """Rows of keys, adding rows for new ones (the one per-group Python step left)."""
        rows = self._rows
        ids = [rows.get(k, -1) for k in keys]  # the common case once warm: all known
        if -1 in ids:
            setdefault = rows.setdefault
            # len(rows) is read before setdefault inserts: a new key gets the next row number.
            ids = [setdefault(k, len(rows)) for k in keys]
            self._grow(len(rows))
        return np.fromiter(ids, dtype=np.int64, count=len(ids))

    def add_groups(
        self,
        keys: Sequence[K],
        minute_start_ms: I64,
        accepted: F64,
        submitted: F64,
        difficulty: F64,
    ) -> npt.NDArray[np.bool_]:
        """Add a batch of (key, minute) deltas: the same rings as calling
        WindowAccumulator.add once per group, in any order (keys may repeat). Returns
        add's "key is new" per group: True at the first group of each key not seen before."""
        known_rows = len(self._rows)
        new_keys = np.zeros(len(keys), dtype=np.bool_)
        if not len(keys):
            return new_keys
        rows = self._row_ids(keys)
        t = np.asarray(minute_start_ms, dtype=np.int64) // MINUTE_MS
        # Each touched row's new head: the max of its old head and its minutes in the batch.
        touched, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        new_keys[first[touched >= known_rows]] = True  # rows are numbered in order of creation
        batch_max = np.full(len(touched), _NO_HEAD, dtype=np.int64)
        np.maximum.at(batch_max, inverse, t)
        old = self.head_m[touched]
        new = np.maximum(old, batch_max)
        fresh = old == _NO_HEAD  # rows never written hold zeros: nothing to clear
        moved = (new > old) & ~fresh
        # Clear the slots the new head reuses: minutes (old, new], hours (old_h, new_h],
        # at most one full ring each (as _move_head does).
        if moved.any():
            r, o, n = touched[moved], old[moved], new[moved]
            count = np.minimum(n - o, _MS)
            owner, minutes = _repeat_ranges(n - count + 1, count)
            self.minute[r[owner], minutes % _MS] = 0.0
            oh, nh = o // 60, n // 60
            count = np.minimum(nh - oh, _HS)
            owner, hours = _repeat_ranges(nh - count + 1, count)
            self.hour[r[owner], hours % _HS] = 0.0
        self.head_m[touched] = new
        self.as_of_m[touched] = np.maximum(self.as_of_m[touched], new)
        # A delta lands in a ring iff its minute (hour) is still held there under the new head.
        head = new[inverse]
        vals = np.stack([accepted, submitted, difficulty], axis=1).astype(np.float64, copy=False)
        # ufunc.at on flat 1-d indexes: numpy's fast path (16x the 2-d (row, slot) form).
        keep = t >= head - 60
        flat = (rows[keep] * _MS + t[keep] % _MS)[:, None] * _F + _FIELDS
        np.add.at(self.minute.reshape(-1), flat.ravel(), vals[keep].ravel())
        th = t // 60
        keep = th >= head // 60 - 24
        flat = (rows[keep] * _HS + th[keep] % _HS)[:, None] * _F + _FIELDS
        np.add.at(self.hour.reshape(-1), flat.ravel(), vals[keep].ravel())
        return new_keys

    def _sums(self, rows: I64, m: I64) -> F64:
        """(n, 5, 3) window sums as of minutes m for rows (all known), from the rings."""
        head = self.head_m[rows][:, None]
        mm = m[:, None]
        # A window of width W covers minutes [m - W, m): ring ages (age a = minute head - a)
        # lo .. W - (m - head), lo = 1 while as_of == head (the head minute is not complete).
        # The 24h window takes its current hour's minutes (width m % 60) from here.
        widths = np.empty((len(rows), _NW), dtype=np.int64)
        widths[:, :_DAY_W] = _WIDTHS_M[None, :]
        widths[:, _DAY_W] = m % 60
        ends = np.clip(widths - (mm - head) + 1, 0, _MS)
        lo = (m == head[:, 0]).astype(np.int64)[:, None]
        # 0/1 weights per ring slot looked up in a table (one contiguous row per window):
        # building them with comparisons made the whole read ~2x slower (26 vs 14 ms / 5,000).
        weights = _WEIGHTS[lo, ends, head % _MS]  # (n, 5, 61)
        out: F64 = np.matmul(weights, self.minute[rows])
        hh = head // 60
        slot_hour = hh - (hh - _SLOTS_H[None, :]) % _HS  # (n, 25)
        start = mm - _DAY_M
        whole_from = -((-start) // 60)  # first whole hour inside the window
        hw = ((slot_hour >= whole_from) & (slot_hour < mm // 60)).astype(np.float64)
        # The leading partial hour counts pro rata (windows.py: minute_weight).
        inside = -start % 60
        lead = (slot_hour == start // 60) & (inside > 0)
        hw = np.where(lead, inside / 60, hw)
        out[:, _DAY_W] += np.matmul(hw[:, None, :], self.hour[rows])[:, 0]
        return out

    def totals(self, key: K, as_of_ms: int) -> WindowTotals:
        """WindowAccumulator.totals: clamps to (and advances) the key's as-of minute."""
        r = self._rows.get(key)
        if r is None:
            return WindowTotals.empty(as_of_ms)
        m = max(as_of_ms // MINUTE_MS, int(self.as_of_m[r]))
        self.as_of_m[r] = m
        s = self._sums(np.array([r], dtype=np.int64), np.array([m], dtype=np.int64))[0]
        return WindowTotals(
            m * MINUTE_MS,
            tuple(float(v) for v in s[:, 0]),
            tuple(float(v) for v in s[:, 1]),
            tuple(float(v) for v in s[:, 2]),
            _spans(m * MINUTE_MS),
        )

    def totals_many(self, keys: Sequence[K], as_of_ms: int) -> TotalsArrays:
        """totals for many keys at once (a snapshot tick); unknown keys read as zeros."""
        get = self._rows.get
        ids = np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        m_query = as_of_ms // MINUTE_MS
        known = ids >= 0
        rows = ids[known]
        m = np.maximum(self.as_of_m[rows], m_query)
        # Repeated keys: all reads see the latest clamp, as sequential totals calls would.
        self.as_of_m[rows] = m
        m = self.as_of_m[rows]
        sums = np.zeros((len(keys), _NW, _F))
        sums[known] = self._sums(rows, m)
        as_of = np.full(len(keys), m_query * MINUTE_MS, dtype=np.int64)
        as_of[known] = m * MINUTE_MS
        return TotalsArrays(
            as_of, sums[:, :, 0], sums[:, :, 1], sums[:, :, 2], _spans(m_query * MINUTE_MS)
        )
