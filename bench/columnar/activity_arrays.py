"""Active-minute ledger for all workers and miners of a partition as numpy arrays: a PROTOTYPE.

The service's ActivityLedger (services/aggregator/domain/activity.py) marks each
(worker, minute) group in two Python ints (the worker's and its miner's mask) and
sums the newly active runs through dicts: ~31% of the aggregator's time in the
100,000-worker backlog profile. This module holds the same masks for every key in
arrays and applies a whole batch with a handful of numpy calls:

- `bits` (rows, W) uint64: a ring of C = 64*W minutes per row, minute m at bit
  m % 64 of word (m // 64) % W; C > horizon + 64, so the service's whole mask
  [base, head] and every window a read needs fit in it;
- `head` (rows,) int64: the newest marked minute (the service's `head`);
- `low` (rows,) int64: the oldest minute ever marked; the service's `base` is
  max(low, head - horizon) (its trim), so base needs no array of its own;

one such table for workers and one for miners (the miner's mask is the union of
its workers'), plus worker row -> miner row and miner row -> pool id.

Why a batch can be applied at once, in any order. For one mask, the service adds
for a new minute t the minutes of t .. t+9 that no marked minute covers; summed
over a batch, minute x is added once iff it is covered by old marks + batch
minutes and was not by old marks alone, which does not depend on the order.
Assigning each such x to the LATEST batch minute t <= x covering it gives the
per-minute run lo .. hi-1 with lo = t + (p+1) from the old marks in t-9 .. t-1
(newly_active_range) and hi = the first old OR batch minute after t (or t+10):
reads of the old ring plus the next batch minute of the same row.

That holds when every read the service makes is exact (its mask still holds
t-9 .. t when t arrives): t >= head_at_arrival - horizon + 9, for the worker's and
the miner's mask. ingest_shares guarantees it (a kept share is at most
max_lateness behind the watermark at its arrival, every head is at or before the
watermark, horizon = ceil(max_lateness) + 10 minutes), for any batch split, even
when a batch moves a head so far that an earlier group of it falls behind the
horizon (counted, then trimmed: here it is read before the head moves). Groups
behind the horizon of the row's head BEFORE the batch are dropped, as the service
drops them in any order. Anything else (behind the horizon of a head the same
batch moved, or in its last 9 minutes) is outside the contract: the service's own
answer for it depends on the order.

Invariants per row after each batch: bits hold exactly the marked minutes of
head-C+1 .. head (those below the horizon are never read, and masked on
read-back); slots above head hold stale minutes until the head passes them, so
reads mask them; a row with no marks has head NO_HEAD and low NO_LOW.

Not covered yet (before it could replace ActivityLedger in domain/model.py):
- prune: rows of idle workers are never freed or reused (the service forgets
  masks behind the watermark's horizon once an hour);
- restore from worker_status rows, as_row, items() (worker_mask/miner_mask read
  back for the verification only);
- the caller: model.apply_fold hands over the fold's dict keys (tuples); the fold
  would have to hand over columns (ideally interned row ids: `rows` is now half
  the cost), and writes.py / adapters/columns.py take the dict `as_dict` rebuilds;
- capacity grows by copy-doubling (a pause of O(rows)); groups outside the
  contract above are not detected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from services.aggregator.domain.activity import ACTIVE_SPAN_MINUTES, MinuteMask
from services.aggregator.domain.minutes import MINUTE_MS, WorkerKey

__all__ = ["ActivityColumns", "ArrayActivityLedger"]

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

_SPAN: Final = ACTIVE_SPAN_MINUTES
_NO_HEAD: Final = np.iinfo(np.int64).min // 4  # "no marks": any minute is after it
_NO_LOW: Final = np.iinfo(np.int64).max // 4
_ONE: Final = np.uint64(1)
_WIN: Final = np.uint64((1 << (2 * _SPAN - 1)) - 1)  # 19 bits: minutes t-9 .. t+9
_BEFORE: Final = np.uint64((1 << (_SPAN - 1)) - 1)  # 9 bits: t-9 .. t-1
_SHIFT_AFTER: Final = np.uint64(_SPAN)
_SHIFT_AT: Final = np.uint64(_SPAN - 1)
# newly_active_range's two bit scans as tables over the 9 bits they look at.
_LO: Final = np.array([v.bit_length() for v in range(1 << (_SPAN - 1))], dtype=np.int64)
_HI: Final = np.array([(v & -v).bit_length() if v else _SPAN for v in range(1 << (_SPAN - 1))],
                      dtype=np.int64)


@dataclass(slots=True, frozen=True)
class ActivityColumns:
    """What ActivityLedger.observe returns, as columns: row i adds miners[i] active miners
    and workers[i] active workers to (pools[pool[i]], minute_ms[i]); only nonzero rows."""

    pools: list[str]
    pool: I64
    minute_ms: I64
    miners: I64
    workers: I64

    def as_dict(self) -> dict[tuple[str, int], list[int]]:
        names = self.pools
        return {(names[p], t): [m, w] for p, t, m, w in zip(
            self.pool.tolist(), self.minute_ms.tolist(), self.miners.tolist(), self.workers.tolist())}


def _repeat_ranges(starts: I64, counts: I64) -> tuple[I64, I64]:
    """(owner index, value) for the ranges starts[i] .. starts[i] + counts[i] - 1, flattened."""
    owner = np.repeat(np.arange(len(starts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    return owner, starts[owner] + (np.arange(len(owner), dtype=np.int64) - first[owner])


def _grown(arr: npt.NDArray[np.generic], need: int, fill: int = 0) -> npt.NDArray[np.generic]:
    """arr with room for `need` rows, by doubling (amortised O(1) copies per key)."""
    if need <= len(arr):
        return arr
    out = np.full((max(need, 2 * len(arr)), *arr.shape[1:]), fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


class _Masks:
    """Ring bitmasks of one kind of key (workers or miners); rows are numbered by the caller."""

    __slots__ = ("bits", "head", "horizon", "low", "words")

    def __init__(self, horizon: int, capacity: int) -> None:
        self.horizon = horizon
        self.words = (horizon + 64) // 64 + 1  # [base, head] spans at most this many words
        self.bits: U64 = np.zeros((capacity, self.words), dtype=np.uint64)
        self.head: I64 = np.full(capacity, _NO_HEAD, dtype=np.int64)
        self.low: I64 = np.full(capacity, _NO_LOW, dtype=np.int64)

    def grow(self, need: int) -> None:
        self.bits = _grown(self.bits, need)  # type: ignore[assignment]
        self.head = _grown(self.head, need, _NO_HEAD)  # type: ignore[assignment]
        self.low = _grown(self.low, need, _NO_LOW)  # type: ignore[assignment]

    def apply(self, rows: I64, t: I64) -> tuple[I64, I64, I64]:
        """Mark minutes t on rows (repeats allowed); (row, lo, hi) of each nonempty run of
        minutes lo .. hi-1 the batch newly makes active (see the module docstring)."""
        words, cap_m = self.words, 64 * self.words
        old_all = self.head[rows]
        keep = t >= old_all - self.horizon  # the service drops these whatever the order
        if not keep.all():
            rows, t = rows[keep], t[keep]
        if not len(rows):
            return rows, t, t
        # (row, minute) pairs, deduplicated and sorted by row then minute.
        t0 = int(t.min())
        pairs = np.sort((rows << 32) | (t - t0))
        # np.unique cost ~7x this sort here (numpy 2.4 goes through a hash table first).
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
        r = pairs >> 32
        t = (pairs & 0xFFFFFFFF) + t0
        old = self.head[r]
        same_next = np.empty(len(r), dtype=np.bool_)
        same_next[:-1] = r[1:] == r[:-1]
        same_next[-1] = False
        gap = np.full(len(r), _SPAN, dtype=np.int64)  # distance to the row's next batch minute
        gap[:-1] = np.where(same_next[:-1], t[1:] - t[:-1], _SPAN)
        # 19 bits of the OLD ring around t (two words, as t-9 may sit at a word's top).
        flat = self.bits.reshape(-1)
        start = t - (_SPAN - 1)
        a = start // 64
        sh = (start % 64).astype(np.uint64)
        base_ix = r * words
        w0 = flat[base_ix + a % words]
        w1 = flat[base_ix + (a + 1) % words]
        win = ((w0 >> sh) | ((w1 << _ONE) << (np.uint64(63) - sh))) & _WIN
        # Slots above the old head hold stale minutes (or nothing, for a new row).
        valid = np.clip(old - start + 1, 0, 2 * _SPAN - 1).astype(np.uint64)
        win &= (_ONE << valid) - _ONE
        new = ((win >> _SHIFT_AT) & _ONE) == 0
        # Runs end at the first later old mark or later batch minute (whichever first).
        around = win | np.where(gap < _SPAN, _ONE << (gap + _SPAN - 1).astype(np.uint64), np.uint64(0))
        lo = t + _LO[(around & _BEFORE).astype(np.int64)]
        hi = t + _HI[(around >> _SHIFT_AFTER).astype(np.int64)]
        run = new & (lo < hi)
        # Move heads: clear the slots of minutes (old, new], at most one ring.
        last = ~same_next
        touched, t_max = r[last], t[last]
        first = np.ones(len(r), dtype=np.bool_)
        first[1:] = ~same_next[:-1]
        h_old = self.head[touched]
        h_new = np.maximum(h_old, t_max)
        moved = (h_new > h_old) & (h_old != _NO_HEAD)
        if moved.any():
            mr, mo, mn = touched[moved], h_old[moved], h_new[moved]
            whole = mn - mo >= cap_m
            if whole.any():
                self.bits[mr[whole]] = 0
                mr, mo, mn = mr[~whole], mo[~whole], mn[~whole]
            w_first, w_last = (mo + 1) // 64, mn // 64
            owner, w_abs = _repeat_ranges(w_first, w_last - w_first + 1)
            lo_bit = np.maximum(mo[owner] + 1 - 64 * w_abs, 0).astype(np.uint64)
            hi_bit = np.minimum(mn[owner] - 64 * w_abs, 63).astype(np.uint64)
            clear = (np.uint64(0xFFFFFFFFFFFFFFFF) >> (np.uint64(63) - hi_bit)) & ~((_ONE << lo_bit) - _ONE)
            # A range of nearly C minutes can touch one ring word twice: .at applies both.
            np.bitwise_and.at(flat, mr[owner] * words + w_abs % words, ~clear)
        self.head[touched] = h_new
        self.low[touched] = np.minimum(self.low[touched], t[first])
        # Minutes a moved head already left behind stay unmarked: their slots are reused.
        mark = new & (t > h_new[np.cumsum(first) - 1] - cap_m)
        np.bitwise_or.at(flat, r[mark] * words + (t[mark] // 64) % words,
                         _ONE << (t[mark] % 64).astype(np.uint64))
        return r[run], lo[run], hi[run]

    def mask(self, row: int) -> MinuteMask:
        """The service's MinuteMask of a row: bits of base .. head, base = max(low, head - horizon)."""
        head = int(self.head[row])
        base = max(int(self.low[row]), head - self.horizon)
        first = base // 64
        ring = self.bits[row]
        words = ring[[(first + i) % self.words for i in range(head // 64 - first + 1)]]
        value = int.from_bytes(words.astype("<u8").tobytes(), "little") >> (base - 64 * first)
        return MinuteMask(base, value & ((1 << (head - base + 1)) - 1))


class ArrayActivityLedger:
    """ActivityLedger's state and `observe` for all keys at once (see module docstring)."""

    __slots__ = ("_miner_pool", "_miner_rows", "_miners", "_pool_ids", "_pools", "_worker_miner",
                 "_worker_rows", "_workers", "horizon")

    def __init__(self, max_lateness_ms: int, capacity: int = 1024) -> None:
        self.horizon = -(-max_lateness_ms // MINUTE_MS) + _SPAN  # the service's horizon
        capacity = max(capacity, 1)
        self._workers = _Masks(self.horizon, capacity)
        self._miners = _Masks(self.horizon, capacity)
        self._worker_rows: dict[WorkerKey, int] = {}
        self._miner_rows: dict[tuple[str, str], int] = {}
        self._worker_miner: I64 = np.zeros(capacity, dtype=np.int64)
        self._miner_pool: I64 = np.zeros(capacity, dtype=np.int64)
        self._pools: list[str] = []
        self._pool_ids: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._worker_rows)

    def _add_workers(self, new: list[WorkerKey]) -> None:
        """Rows for distinct new keys, numbered in order; new miners and pools with them."""
        rows, miners, pools = self._worker_rows, self._miner_rows, self._pool_ids
        first_w, first_m = len(rows), len(miners)
        owners: list[int] = []
        miner_pools: list[int] = []
        for key in new:
            rows[key] = len(rows)
            miner = miners.get(key[:2])  # type: ignore[call-overload]
            if miner is None:
                miner = miners[key[:2]] = len(miners)  # type: ignore[index]
                pool = pools.get(key[0])
                if pool is None:
                    pool = pools[key[0]] = len(self._pools)
                    self._pools.append(key[0])
                miner_pools.append(pool)
            owners.append(miner)
        self._worker_miner = _grown(self._worker_miner, len(rows))  # type: ignore[assignment]
        self._workers.grow(len(self._worker_miner))
        self._worker_miner[first_w:len(rows)] = owners
        self._miner_pool = _grown(self._miner_pool, len(miners))  # type: ignore[assignment]
        self._miners.grow(len(self._miner_pool))
        self._miner_pool[first_m:len(miners)] = miner_pools

    def rows(self, keys: Sequence[WorkerKey]) -> I64:
        """Rows of keys, adding rows for new ones: the one per-group Python step left (a fold
        that interned its keys could hand these over instead)."""
        get = self._worker_rows.get
        ids = [get(k, -1) for k in keys]  # the common case once warm: all known
        if -1 in ids:
            self._add_workers(list(dict.fromkeys(k for k, i in zip(keys, ids) if i < 0)))
            ids = [i if i >= 0 else get(k) for i, k in zip(ids, keys)]  # type: ignore[misc]
        return np.fromiter(ids, dtype=np.int64, count=len(ids))

    def observe_groups(self, keys: Sequence[WorkerKey], minute_start_ms: I64) -> ActivityColumns:
        """ActivityLedger.observe for the groups (keys[i], minute_start_ms[i]), keys may repeat."""
        return self.observe_rows(self.rows(keys), minute_start_ms)

    def observe_rows(self, w_rows: I64, minute_start_ms: I64) -> ActivityColumns:
        """observe_groups for keys already turned into rows by `rows`."""
        empty = np.zeros(0, dtype=np.int64)
        if not len(w_rows):
            return ActivityColumns(self._pools, empty, empty, empty, empty)
        t = np.asarray(minute_start_ms, dtype=np.int64) // MINUTE_MS
        wr, wlo, whi = self._workers.apply(w_rows, t)
        mr, mlo, mhi = self._miners.apply(self._worker_miner[w_rows], t)
        # Runs -> +1/-1 edges per (pool, minute); a prefix sum gives each minute's count.
        w_pool, m_pool = self._miner_pool[self._worker_miner[wr]], self._miner_pool[mr]
        pool = np.concatenate([w_pool, w_pool, m_pool, m_pool])
        marks = np.concatenate([wlo, whi, mlo, mhi])
        if not len(marks):
            return ActivityColumns(self._pools, empty, empty, empty, empty)
        nw, nm = len(wr), len(mr)
        w_step = np.concatenate([np.ones(nw), -np.ones(nw), np.zeros(2 * nm)])
        m_step = np.concatenate([np.zeros(2 * nw), np.ones(nm), -np.ones(nm)])
        m0 = int(marks.min())
        edge, inverse = np.unique((pool << 32) | (marks - m0), return_inverse=True)
        workers = np.cumsum(np.bincount(inverse, weights=w_step, minlength=len(edge)))
        miners = np.cumsum(np.bincount(inverse, weights=m_step, minlength=len(edge)))
        # Every pool's edges sum to zero, so a count never runs on past its pool's last edge.
        length = np.zeros(len(edge), dtype=np.int64)
        length[:-1] = edge[1:] - edge[:-1]
        some = (workers != 0) | (miners != 0)
        owner, minute = _repeat_ranges((edge & 0xFFFFFFFF)[some] + m0, length[some])
        src = np.flatnonzero(some)[owner]
        return ActivityColumns(self._pools, (edge >> 32)[src], minute * MINUTE_MS,
                               miners[src].astype(np.int64), workers[src].astype(np.int64))

    def worker_mask(self, key: WorkerKey) -> MinuteMask | None:
        row = self._worker_rows.get(key)
        return None if row is None else self._workers.mask(row)

    def miner_mask(self, key: tuple[str, str]) -> MinuteMask | None:
        row = self._miner_rows.get(key)
        return None if row is None else self._miners.mask(row)
