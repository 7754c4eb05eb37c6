"""The share-minute masks of many workers (or miners) as rows of numpy arrays, applied a batch at once.

ActivityLedger (activity.py) keeps one `MinuteRings` for workers and one for miners;
row numbers are its interning of keys. Per row:

- `bits` (rows, W) uint64: a ring of C = 64*W minutes, minute m at bit m % 64 of
  word (m // 64) % W; C > horizon + 64, so the whole mask [base, head] and every
  window a read needs fit in it;
- `head` (rows,) int64: the newest marked minute (MinuteMask.head);
- `low` (rows,) int64: the oldest minute marked (or restored as base); MinuteMask's
  `base` is max(low, head - horizon) (its trim), so base needs no array of its own.

Why a batch can be applied at once, in any order. For one mask, MinuteMask.add
makes active for a new minute t the minutes of t .. t+9 that no marked minute
covers; summed over a batch, minute x is added once iff it is covered by old
marks + batch minutes and was not by old marks alone, which does not depend on
the order. Assigning each such x to the LATEST batch minute t <= x covering it
gives the per-minute run lo .. hi-1 with lo = t + (p+1) from the old marks in
t-9 .. t-1 (newly_active_range) and hi = the first old OR batch minute after t
(or t+10): reads of the old ring plus the next batch minute of the same row.

That is exact when every read the per-mask order would make is (its mask still
holds t-9 .. t when t arrives): t >= head_at_arrival - horizon + 9, for the
worker's and the miner's mask. PoolAggregate.ingest_shares guarantees it (a kept
share is at most max_lateness behind the watermark at its arrival, every head is
at or before the watermark, horizon = ceil(max_lateness) + 10 minutes) for any
batch split, even when a batch moves a head so far that an earlier group of it
falls behind the horizon (counted, then trimmed: here it is read before the head
moves). Groups behind the horizon of the row's head BEFORE the batch are dropped,
as MinuteMask.add drops them in any order. Anything else (behind the horizon of a
head the same batch moved, or in its last 9 minutes) is outside the contract:
the per-mask answer for it depends on the order too.

Invariants per row after each batch: bits hold the marked minutes of
head-C+1 .. head (those below the horizon are never read, and masked on
read-back); slots above head hold stale minutes until the head passes them, so
reads mask them; a row with no marks has head NO_HEAD, low NO_LOW and zero bits
(a row's first head move clears nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from .activity_mask import ACTIVE_SPAN_MINUTES, MinuteMask

__all__ = ["I64", "NO_HEAD", "MinuteRings", "repeat_ranges"]

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

_SPAN: Final = ACTIVE_SPAN_MINUTES
NO_HEAD: Final = np.iinfo(np.int64).min // 4  # "no marks": any minute is after it
NO_LOW: Final = np.iinfo(np.int64).max // 4
_RING: Final = np.dtype("<u8")  # little-endian words: tobytes() reads as int.from_bytes(.., "little")
_ONE: Final = np.uint64(1)
_WIN: Final = np.uint64((1 << (2 * _SPAN - 1)) - 1)  # 19 bits: minutes t-9 .. t+9
_BEFORE: Final = np.uint64((1 << (_SPAN - 1)) - 1)  # 9 bits: t-9 .. t-1
_SHIFT_AFTER: Final = np.uint64(_SPAN)
_SHIFT_AT: Final = np.uint64(_SPAN - 1)
# newly_active_range's two bit scans as tables over the 9 bits they look at.
_LO: Final = np.array([v.bit_length() for v in range(1 << (_SPAN - 1))], dtype=np.int64)
_HI: Final = np.array([(v & -v).bit_length() if v else _SPAN for v in range(1 << (_SPAN - 1))],
                      dtype=np.int64)


def repeat_ranges(starts: I64, counts: I64) -> tuple[I64, I64]:
    """(owner index, value) for the ranges starts[i] .. starts[i] + counts[i] - 1, flattened."""
    owner = np.repeat(np.arange(len(starts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    return owner, starts[owner] + (np.arange(len(owner), dtype=np.int64) - first[owner])


class MinuteRings:
    """Ring bitmasks of one kind of key; rows are numbered (and reused) by the caller."""

    __slots__ = ("bits", "head", "horizon", "low", "words")

    def __init__(self, horizon_minutes: int, capacity: int) -> None:
        self.horizon = horizon_minutes
        self.words = (horizon_minutes + 64) // 64 + 1  # [base, head] spans at most this many words
        self.bits: U64 = np.zeros((capacity, self.words), dtype=_RING)
        self.head: I64 = np.full(capacity, NO_HEAD, dtype=np.int64)
        self.low: I64 = np.full(capacity, NO_LOW, dtype=np.int64)

    @property
    def capacity(self) -> int:
        return len(self.head)

    def resize(self, capacity: int, keep: I64 | None = None) -> None:
        """Room for `capacity` rows; `keep` (ascending rows): those become rows 0 .., the rest
        is emptied (None: every row stays where it is)."""
        if keep is None:
            keep = np.arange(min(capacity, self.capacity), dtype=np.int64)
        bits = np.zeros((capacity, self.words), dtype=_RING)
        head = np.full(capacity, NO_HEAD, dtype=np.int64)
        low = np.full(capacity, NO_LOW, dtype=np.int64)
        bits[: len(keep)] = self.bits[keep]
        head[: len(keep)] = self.head[keep]
        low[: len(keep)] = self.low[keep]
        self.bits, self.head, self.low = bits, head, low

    def apply(self, rows: I64, t: I64) -> tuple[I64, I64, I64]:
        """Mark minutes t on rows (repeats allowed); (row, lo, hi) of each nonempty run of
        minutes lo .. hi-1 the batch newly makes active (see the module docstring)."""
        words, cap_m = self.words, 64 * self.words
        old_all = self.head[rows]
        keep = t >= old_all - self.horizon  # MinuteMask.add drops these whatever the order
        if not keep.all():
            rows, t = rows[keep], t[keep]
        if not len(rows):
            return rows, t, t
        # (row, minute) pairs, deduplicated and sorted by row then minute.
        t0 = int(t.min())
        pairs = np.sort((rows << 32) | (t - t0))
        # np.unique costs ~7x this sort here (numpy 2.4 goes through a hash table first).
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
        moved = (h_new > h_old) & (h_old != NO_HEAD)
        if moved.any():
            mr, mo, mn = touched[moved], h_old[moved], h_new[moved]
            whole = mn - mo >= cap_m
            if whole.any():
                self.bits[mr[whole]] = 0
                mr, mo, mn = mr[~whole], mo[~whole], mn[~whole]
            w_first, w_last = (mo + 1) // 64, mn // 64
            owner, w_abs = repeat_ranges(w_first, w_last - w_first + 1)
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

    def read(self, row: int) -> MinuteMask:
        """The MinuteMask of a marked row: bits of base .. head, base = max(low, head - horizon)."""
        head = self.head.item(row)
        base = max(self.low.item(row), head - self.horizon)
        first = base // 64
        at = 8 * (first % self.words)  # the ring rotated so that word `first` comes first
        ring = self.bits[row].tobytes()
        value = int.from_bytes(ring[at:] + ring[:at], "little") >> (base - 64 * first)
        return MinuteMask(base, value & ((1 << (head - base + 1)) - 1))

    def read_many(self, rows: Sequence[int]) -> list[MinuteMask]:
        """`read` of many marked rows: the rotations gathered at once, one int per row left."""
        if not rows:
            return []
        index = np.asarray(rows, dtype=np.int64)
        heads = self.head[index]
        bases = np.maximum(self.low[index], heads - self.horizon)
        firsts = bases // 64
        slots = (firsts[:, None] + np.arange(self.words, dtype=np.int64)) % self.words
        ring = np.take_along_axis(self.bits[index], slots, axis=1).tobytes()
        size = 8 * self.words
        return [MinuteMask(base, (int.from_bytes(ring[at:at + size], "little") >> shift) & ((1 << width) - 1))
                for at, base, shift, width in zip(range(0, size * len(index), size), bases.tolist(),
                                                  (bases - 64 * firsts).tolist(), (heads - bases + 1).tolist())]

    def write(self, rows: Sequence[int], masks: Sequence[MinuteMask]) -> None:
        """Make each row hold exactly its (nonempty) mask, trimmed to the horizon."""
        if not rows:
            return
        size = 8 * self.words
        blob = bytearray()
        heads: list[int] = []
        lows: list[int] = []
        for mask in masks:
            head = mask.head
            base = max(mask.base, head - self.horizon)
            first = base // 64
            aligned = ((mask.bits >> (base - mask.base)) << (base - 64 * first)).to_bytes(size, "little")
            at = size - 8 * (first % self.words)  # word `first` goes to ring slot first % W
            blob += aligned[at:] + aligned[:at]
            heads.append(head)
            lows.append(base)
        index = np.asarray(rows, dtype=np.int64)
        self.bits[index] = np.frombuffer(bytes(blob), dtype="<u8").reshape(len(index), self.words)
        self.head[index] = heads
        self.low[index] = lows
