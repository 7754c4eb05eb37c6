"""Window sums for every worker of a model as numpy arrays, a batch at a time (issue 15).

WindowAccumulator (accumulator.py) costs ~20-50 us of Python per (key, minute)
group; at 100,000 workers a batch holds about one group per worker-minute, so
that per-group call bounded the aggregator. `WindowRows` holds the same rings
for all keys, one row per key, and applies a whole batch with a few numpy calls:

- `minute` (rows, 61, 3): the ring of minute slots (minutes head-60 .. head),
- `hour` (rows, 25, 3): the ring of hour slots (hours head_hour-24 .. head_hour),
- `head_m`, `as_of_m` (rows,) int64: newest minute written, minute the key was
  last read or advanced to (minutes since the epoch),

each slot holding (accepted count, submitted count, accepted difficulty), the
same rings and slot numbering as WindowAccumulator, read with the same rules
(windows.py). Running window sums are NOT kept: reads recompute them from the
rings (one batched matmul), which costs nothing per group and leaves no float
drift behind (an idle key reads exact zeros).

Why a batch can be applied at once: the rings' final content does not depend on
the order of the batch's groups. With H the key's head after the batch (max of
its old head and the batch's minutes), a delta for minute t stays in the minute
ring iff t >= H - 60 and in the hour ring iff t // 60 >= H // 60 - 24, whatever
came before or after it (a slot is cleared exactly when the head passes the
minute 61 slots, or hour 25 slots, after the one it held). `as_of` only clamps
reads, and is the max of every minute added or read.

Rows: a key gets a row when first added (a pruned key's row first, then the
next unused one; capacity doubles by copy when full). `prune` zeroes the rows
of idle keys and puts them on the free list, so memory follows the peak number
of live keys, not how many keys ever came and went.

Reads of many keys should go through `totals_many` (one numpy pass): a single
`totals` is a numpy call per key. `read_ahead` lets per-key callers (figure
builders that take one key at a time) pay that once per tick: it keeps the
totals of the keys it read until the next write (or read-ahead), and `totals`
answers from them while a read would give the same.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

# The ring layout is WindowAccumulator's: shared constants, not copies.
from .accumulator import _DAY_M, _F, _HS, _MINUTE_WINDOWS, _MS, WindowTotals, _spans
from .minutes import MINUTE_MS
from .windows import WINDOWS

__all__ = ["TotalsArrays", "WindowRows"]

K = TypeVar("K", bound=Hashable)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_NW: Final = len(WINDOWS)  # 5: 1m, 5m, 15m, 1h, 24h; 24h is the last
_DAY_W: Final = _NW - 1
_WIDTHS_M: Final = np.array(_MINUTE_WINDOWS, dtype=np.int64)  # minute windows' widths
_NO_HEAD: Final = np.iinfo(np.int64).min // 4  # "never written": any minute is after it
_PRUNE_SPAN_M: Final = _DAY_M + 60  # a key whose head is older than this holds nothing any window reads


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

    def as_totals(self) -> list[WindowTotals]:
        """One WindowTotals per row (for callers that add totals up key by key)."""
        acc, sub, dif = self.accepted.tolist(), self.submitted.tolist(), self.difficulty.tolist()
        return [WindowTotals(as_of, tuple(acc[i]), tuple(sub[i]), tuple(dif[i]), _spans(as_of))
                for i, as_of in enumerate(self.as_of_ms.tolist())]


def _repeat_ranges(starts: I64, counts: I64) -> tuple[I64, I64]:
    """(owner index, value) for the ranges starts[i] .. starts[i] + counts[i] - 1, flattened."""
    owner = np.repeat(np.arange(len(starts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts  # position of each range's first element
    values = starts[owner] + (np.arange(len(owner), dtype=np.int64) - first[owner])
    return owner, values


class WindowRows(Generic[K]):
    """WindowAccumulator's state and semantics for all keys at once (see module docstring).

    Callers must query with `as_of_ms` not before any minute they added; an earlier
    `as_of_ms` is clamped to the key's latest state (as WindowAccumulator does).
    """

    __slots__ = ("_ahead", "_free", "_keys", "_rows", "as_of_m", "head_m", "hour", "minute")

    def __init__(self, capacity: int = 1024) -> None:
        self._rows: dict[K, int] = {}
        capacity = max(capacity, 1)
        self._keys: list[K | None] = [None] * capacity  # row -> key (None: free or unused)
        self._free: list[int] = []  # rows of pruned keys, reused before unused ones
        self._ahead: dict[K, WindowTotals] = {}  # read_ahead's totals, valid until the next write
        self.minute: F64 = np.zeros((capacity, _MS, _F))
        self.hour: F64 = np.zeros((capacity, _HS, _F))
        self.head_m: I64 = np.full(capacity, _NO_HEAD, dtype=np.int64)
        self.as_of_m: I64 = np.full(capacity, _NO_HEAD, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def keys(self) -> Iterator[K]:
        return iter(self._rows)

    @property
    def capacity(self) -> int:
        return len(self.head_m)

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
        self._keys.extend([None] * (new_cap - cap))

    def _row_ids(self, keys: Sequence[K]) -> tuple[I64, npt.NDArray[np.bool_]]:
        """Rows of keys, giving rows to new ones (the one per-group Python step left), and
        add's "key is new" per group: True at the first group of each key not seen before."""
        rows = self._rows
        new_keys = np.zeros(len(keys), dtype=np.bool_)
        ids = [rows.get(k, -1) for k in keys]  # the common case once warm: all known
        if -1 in ids:
            free, owners = self._free, self._keys
            used = len(rows) + len(free)  # rows below this were handed out at some point
            for i, k in enumerate(keys):
                if ids[i] != -1:
                    continue
                r = rows.get(k)  # an earlier group of this batch may have given it one
                if r is None:
                    if free:
                        r = free.pop()
                    else:
                        r = used
                        used += 1
                        if r >= len(owners):
                            self._grow(r + 1)
                            owners = self._keys
                    rows[k] = r
                    owners[r] = k
                    new_keys[i] = True
                ids[i] = r
        return np.fromiter(ids, dtype=np.int64, count=len(ids)), new_keys

    def add(self, key: K, minute_start_ms: int, accepted: float, submitted: float, difficulty: float) -> bool:
        """One group (WindowAccumulator.add); True if the key is new. Batches: `add_groups`."""
        new = self.add_groups([key], np.array([minute_start_ms], dtype=np.int64), np.array([accepted]),
                              np.array([submitted]), np.array([difficulty]))
        return bool(new[0])

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
        if not len(keys):
            return np.zeros(0, dtype=np.bool_)
        self._ahead.clear()
        rows, new_keys = self._row_ids(keys)
        t = np.asarray(minute_start_ms, dtype=np.int64) // MINUTE_MS
        # Each touched row's new head: the max of its old head and its minutes in the batch.
        touched, inverse = np.unique(rows, return_inverse=True)
        batch_max = np.full(len(touched), _NO_HEAD, dtype=np.int64)
        np.maximum.at(batch_max, inverse, t)
        old = self.head_m[touched]
        new = np.maximum(old, batch_max)
        fresh = old == _NO_HEAD  # rows never written (or zeroed by prune) hold zeros: nothing to clear
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

    def _one(self, r: int, m: int) -> WindowTotals:
        s = self._sums(np.array([r], dtype=np.int64), np.array([m], dtype=np.int64))[0]
        return WindowTotals(m * MINUTE_MS, tuple(s[:, 0].tolist()), tuple(s[:, 1].tolist()),
                            tuple(s[:, 2].tolist()), _spans(m * MINUTE_MS))

    def totals(self, key: K, as_of_ms: int) -> WindowTotals:
        """Window sums for `key` as of `as_of_ms` (zeros for an unknown key); clamps to,
        and advances, the key's as-of minute."""
        ahead = self._read_ahead(key, as_of_ms)
        if ahead is not None:
            return ahead
        r = self._rows.get(key)
        if r is None:
            return WindowTotals.empty(as_of_ms)
        m = max(as_of_ms // MINUTE_MS, int(self.as_of_m[r]))
        self.as_of_m[r] = m
        return self._one(r, m)

    def _read_ahead(self, key: K, as_of_ms: int) -> WindowTotals | None:
        """read_ahead's totals of key if reading it now would give the same: nothing was written
        since and the query is not past them; a later query advances the key, so they go."""
        ahead = self._ahead.get(key)
        if ahead is None:
            return None
        if as_of_ms - as_of_ms % MINUTE_MS <= ahead.as_of_ms:
            return ahead
        del self._ahead[key]
        return None

    def recomputed(self, key: K, as_of_ms: int) -> WindowTotals:
        """totals without advancing the key (WindowAccumulator's reference read; here
        every read is a recomputation from the rings)."""
        r = self._rows.get(key)
        if r is None:
            return WindowTotals.empty(as_of_ms)
        return self._one(r, max(as_of_ms // MINUTE_MS, int(self.as_of_m[r])))

    def totals_many(self, keys: Sequence[K], as_of_ms: int) -> TotalsArrays:
        """totals for many keys at once (a snapshot tick, a ranking); unknown keys read as zeros."""
        if self._ahead:  # keys advanced past their read-ahead totals must not answer from them
            for k in keys:
                self._read_ahead(k, as_of_ms)
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

    def totals_list(self, keys: Sequence[K], as_of_ms: int) -> list[WindowTotals]:
        """[totals(k, as_of_ms) for k in keys] in one numpy pass (none if all were read ahead)."""
        if self._ahead:
            ahead = [self._read_ahead(k, as_of_ms) for k in keys]
            hits = [t for t in ahead if t is not None]
            if len(hits) == len(ahead):
                return hits
        return self.totals_many(keys, as_of_ms).as_totals()

    def read_ahead(self, keys: Sequence[K], as_of_ms: int) -> None:
        """Read `keys` now in one pass, so that `totals` of any of them as of a minute up to
        `as_of_ms` answers without numpy until the next add or prune. Replaces the previous
        read-ahead: what is kept stays one reader's keys, however long no batch comes."""
        known = [k for k in keys if k in self._rows]
        totals = self.totals_list(known, as_of_ms)
        self._ahead = dict(zip(known, totals, strict=True))

    def prune(self, as_of_ms: int) -> int:
        """Forget keys with no data inside any window any more; returns how many. Their rows
        are zeroed and reused for new keys."""
        self._ahead.clear()
        used = len(self._rows) + len(self._free)
        oldest = as_of_ms // MINUTE_MS - _PRUNE_SPAN_M
        head = self.head_m[:used]
        dead = np.flatnonzero((head < oldest) & (head != _NO_HEAD))
        if not len(dead):
            return 0
        owners, rows = self._keys, self._rows
        for r in dead.tolist():
            del rows[owners[r]]  # type: ignore[arg-type]  # a row with a head has an owner
            owners[r] = None
        self.minute[dead] = 0.0
        self.hour[dead] = 0.0
        self.head_m[dead] = _NO_HEAD
        self.as_of_m[dead] = _NO_HEAD
        # Lowest rows last: pop() hands them out first, keeping live rows packed at the front.
        self._free = sorted(self._free + dead.tolist(), reverse=True)
        return len(dead)
