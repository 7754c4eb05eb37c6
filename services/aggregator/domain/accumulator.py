"""Running window sums per key, updated once per minute bucket, not per event.

Memory layout (why): 100,000 workers with 24 hours of per-minute history as
Python objects would be ~144 million objects; even packed doubles it is 34 KB a
worker. Each key here owns ONE `array('d')` of 273 doubles (2,184 bytes):

- a ring of 61 minute slots (the last hour of complete minutes + the current one),
- a ring of 25 hour slots (the 24h window: whole hours + the current hour),
- 5 windows x 3 running sums,

each slot holding (accepted count, submitted count, accepted difficulty).
Counts are kept as doubles: exact up to 2**53.

The 24h sums kept run over whole hours (from the first hour boundary inside the
window) plus the current hour's minutes; the window's leading partial hour is
added pro rata from its hour slot when totals are read (windows.py says why).

Window sums move incrementally: when time passes a minute boundary, the
completed minute enters every window and the minute falling out of each window
leaves (about 30 float operations per key per minute); a late delta for an
already-complete minute is added to exactly the windows that cover it. After a
long idle gap the sums are recomputed from the rings instead. A window whose
submitted count drops to 0 is reset to exact zeros, so float drift from
add/subtract cannot leave phantom hashrate on an idle worker.

Invariant: `as_of` (the minute the sums are valid for; windows cover minutes
before it) is never before `head` (the newest minute written), so the only
minute with data that has not entered the windows is `head` itself.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Generic, TypeVar

from .minutes import MINUTE_MS
from .windows import WINDOWS, window_range

__all__ = ["SERIES_BYTES", "WindowAccumulator", "WindowTotals"]

K = TypeVar("K", bound=Hashable)

_F: Final = 3  # fields per slot: accepted, submitted, difficulty
_MS: Final = 61  # minute slots: minutes head-60 .. head
_HS: Final = 25  # hour slots: hours head_hour-24 .. head_hour
_HBASE: Final = _MS * _F
_SBASE: Final = _HBASE + _HS * _F
_SIZE: Final = _SBASE + len(WINDOWS) * _F
_MINUTE_WINDOWS: Final = (1, 5, 15, 60)  # minutes; window indexes 0..3, 24h is index 4
_DAY_M: Final = 1440
_STEP_LIMIT: Final = 8  # beyond this many minutes, recomputing is cheaper than stepping
_ZEROS: Final = array("d", bytes(8 * _SIZE))
SERIES_BYTES: Final = _SIZE * 8


def _ceil_hour_m(minute: int) -> int:
    return -((-minute) // 60) * 60


@dataclass(slots=True, frozen=True)
class WindowTotals:
    """Sums per window (in WINDOWS order) as of a minute boundary."""

    as_of_ms: int
    accepted: tuple[float, ...]
    submitted: tuple[float, ...]
    difficulty: tuple[float, ...]
    span_ms: tuple[int, ...]

    @classmethod
    def empty(cls, as_of_ms: int) -> WindowTotals:
        zeros = (0.0,) * len(WINDOWS)
        as_of_ms -= as_of_ms % MINUTE_MS
        return cls(as_of_ms, zeros, zeros, zeros, _spans(as_of_ms))

    def __add__(self, other: WindowTotals) -> WindowTotals:
        if other.span_ms != self.span_ms:
            raise ValueError("cannot add window totals taken as of different minutes")
        return WindowTotals(
            max(self.as_of_ms, other.as_of_ms),
            tuple(a + b for a, b in zip(self.accepted, other.accepted)),
            tuple(a + b for a, b in zip(self.submitted, other.submitted)),
            tuple(a + b for a, b in zip(self.difficulty, other.difficulty)),
            self.span_ms,
        )


@lru_cache(maxsize=256)  # one entry per as-of minute in use; saves 5 range calls per key
def _spans(as_of_ms: int) -> tuple[int, ...]:
    out = []
    for name in WINDOWS:
        start, end = window_range(name, as_of_ms)
        out.append(end - start)
    return tuple(out)


def _leading_hour(d: array[float], head: int, m: int) -> tuple[float, float, float]:
    """The 24h window's leading partial hour as of minute m, pro rata from its hour slot."""
    start = m - _DAY_M
    inside = -start % 60  # minutes of that hour inside the window; 0 when start is on the hour
    hour = start // 60
    if not inside or not head // 60 - 24 <= hour <= head // 60:  # aligned, or not in the ring
        return 0.0, 0.0, 0.0
    o = _HBASE + (hour % _HS) * _F
    f = inside / 60
    return d[o] * f, d[o + 1] * f, d[o + 2] * f


class _Series:
    __slots__ = ("as_of", "data", "head")

    def __init__(self, minute: int) -> None:
        self.head = minute
        self.as_of = minute
        self.data = array("d", _ZEROS)


class WindowAccumulator(Generic[K]):
    """Per-key window sums for 1m, 5m, 15m, 1h and 24h (see module docstring).

    Callers must query with `as_of_ms` not before any minute they added (use the
    event-time watermark, or a later wall clock); an earlier `as_of_ms` is
    clamped to the key's latest state.
    """

    __slots__ = ("_series",)

    def __init__(self) -> None:
        self._series: dict[K, _Series] = {}

    def __len__(self) -> int:
        return len(self._series)

    def __contains__(self, key: object) -> bool:
        return key in self._series

    def keys(self) -> Iterator[K]:
        return iter(self._series)

    def add(
        self, key: K, minute_start_ms: int, accepted: float, submitted: float, difficulty: float
    ) -> bool:
        """Add one minute's delta for `key` (from a folded batch); True if the key is new."""
        t = minute_start_ms // MINUTE_MS
        s = self._series.get(key)
        new = s is None
        if s is None:
            s = self._series[key] = _Series(t)
        elif t > s.head:
            if t > s.as_of:
                _advance(s, t)
            _move_head(s, t)
        d = s.data
        head = s.head
        if t >= head - 60:
            o = (t % _MS) * _F
            d[o] += accepted
            d[o + 1] += submitted
            d[o + 2] += difficulty
        if t // 60 >= head // 60 - 24:
            o = _HBASE + (t // 60 % _HS) * _F
            d[o] += accepted
            d[o + 1] += submitted
            d[o + 2] += difficulty
        m = s.as_of
        if t < m:  # a complete minute changed: only the windows covering it move
            for w, width in enumerate(_MINUTE_WINDOWS):
                if t >= m - width:
                    o = _SBASE + w * _F
                    d[o] += accepted
                    d[o + 1] += submitted
                    d[o + 2] += difficulty
            if t >= _ceil_hour_m(m - _DAY_M):
                o = _SBASE + 4 * _F
                d[o] += accepted
                d[o + 1] += submitted
                d[o + 2] += difficulty
        return new

    def totals(self, key: K, as_of_ms: int) -> WindowTotals:
        """Window sums for `key` as of `as_of_ms` (zeros for an unknown key)."""
        s = self._series.get(key)
        if s is None:
            return WindowTotals.empty(as_of_ms)
        m = as_of_ms // MINUTE_MS
        if m > s.as_of:
            _advance(s, m)
        d = s.data
        b = _SBASE
        a, n, x = _leading_hour(d, s.head, s.as_of)
        return WindowTotals(
            s.as_of * MINUTE_MS,
            (d[b], d[b + 3], d[b + 6], d[b + 9], d[b + 12] + a),
            (d[b + 1], d[b + 4], d[b + 7], d[b + 10], d[b + 13] + n),
            (d[b + 2], d[b + 5], d[b + 8], d[b + 11], d[b + 14] + x),
            _spans(s.as_of * MINUTE_MS),
        )

    def recomputed(self, key: K, as_of_ms: int) -> WindowTotals:
        """Totals summed afresh from the rings (a reference for tests; does not mutate)."""
        s = self._series.get(key)
        if s is None:
            return WindowTotals.empty(as_of_ms)
        m = max(as_of_ms // MINUTE_MS, s.as_of)
        sums = _recompute_sums(s, m)
        for i, part in enumerate(_leading_hour(s.data, s.head, m)):
            sums[12 + i] += part
        return WindowTotals(
            m * MINUTE_MS,
            tuple(sums[w * 3] for w in range(5)),
            tuple(sums[w * 3 + 1] for w in range(5)),
            tuple(sums[w * 3 + 2] for w in range(5)),
            _spans(m * MINUTE_MS),
        )

    def prune(self, as_of_ms: int) -> int:
        """Forget keys with no data inside any window any more; returns how many."""
        oldest = as_of_ms // MINUTE_MS - _DAY_M - 60
        dead = [k for k, s in self._series.items() if s.head < oldest]
        for key in dead:
            del self._series[key]
        return len(dead)


def _move_head(s: _Series, t: int) -> None:
    """Make minute t the newest, clearing the ring slots it and the minutes between reuse."""
    d = s.data
    old = s.head
    for minute in range(max(old + 1, t - _MS + 1), t + 1):
        o = (minute % _MS) * _F
        d[o] = d[o + 1] = d[o + 2] = 0.0
    old_h, new_h = old // 60, t // 60
    for hour in range(max(old_h + 1, new_h - _HS + 1), new_h + 1):
        o = _HBASE + (hour % _HS) * _F
        d[o] = d[o + 1] = d[o + 2] = 0.0
    s.head = t


def _advance(s: _Series, m: int) -> None:
    if m - s.as_of > _STEP_LIMIT:
        sums = _recompute_sums(s, m)
        s.data[_SBASE:] = array("d", sums)
        s.as_of = m
        return
    while s.as_of < m:
        _step(s)


def _sub(d: array[float], o: int, a: float, n: float, x: float) -> None:
    na = d[o] - a
    nn = d[o + 1] - n
    if nn == 0.0:  # nothing left: exact zeros (no float drift left behind)
        d[o] = d[o + 1] = d[o + 2] = 0.0
    else:
        d[o] = na
        d[o + 1] = nn
        d[o + 2] = 0.0 if na == 0.0 else d[o + 2] - x


def _step(s: _Series) -> None:
    """Move the sums from as_of m to m + 1: minute m enters, older minutes leave."""
    d = s.data
    m = s.as_of
    head = s.head
    if m == head:  # only the head minute can hold data not yet in the windows
        o = (m % _MS) * _F
        a, n, x = d[o], d[o + 1], d[o + 2]
        if n:
            for o2 in range(_SBASE, _SIZE, _F):
                d[o2] += a
                d[o2 + 1] += n
                d[o2 + 2] += x
    for w, width in enumerate(_MINUTE_WINDOWS):
        t = m - width
        if head - 60 <= t <= head:
            o = (t % _MS) * _F
            if d[o + 1]:
                _sub(d, _SBASE + w * _F, d[o], d[o + 1], d[o + 2])
    if m % 60 == 0:  # the 24h window's start moves past a whole hour
        hour = m // 60 - 24
        if hour <= head // 60:
            o = _HBASE + (hour % _HS) * _F
            if d[o + 1]:
                _sub(d, _SBASE + 4 * _F, d[o], d[o + 1], d[o + 2])
    s.as_of = m + 1


def _ring_sums(d: array[float], base: int, slots: int, first: int, count: int) -> tuple[float, float, float]:
    """Sums of `count` consecutive ring slots from slot number `first` (any integer: taken
    modulo `slots`), per field. Slices with a step sum in C: a window is at most two runs."""
    i = first % slots
    runs = ((i, i + count),) if i + count <= slots else ((i, slots), (0, i + count - slots))
    a = n = x = 0.0
    for first_slot, end_slot in runs:
        start, stop = base + first_slot * _F, base + end_slot * _F  # offsets into the flat array
        a += sum(d[start:stop:_F])
        n += sum(d[start + 1:stop:_F])
        x += sum(d[start + 2:stop:_F])
    return a, n, x


def _recompute_sums(s: _Series, m: int) -> list[float]:
    d = s.data
    head = s.head
    out = [0.0] * (len(WINDOWS) * _F)
    lo, hi = head - 60, head  # minutes held by the ring

    def add_minutes(w: int, start: int, end: int) -> None:
        start, end = max(start, lo), min(end, hi + 1)
        if start < end:
            a, n, x = _ring_sums(d, 0, _MS, start, end - start)
            out[w * 3] += a
            out[w * 3 + 1] += n
            out[w * 3 + 2] += x

    for w, width in enumerate(_MINUTE_WINDOWS):
        add_minutes(w, m - width, m)
    current_hour = m // 60
    first_hour = max(_ceil_hour_m(m - _DAY_M) // 60, head // 60 - 24)
    end_hour = min(current_hour, head // 60 + 1)
    if first_hour < end_hour:
        a, n, x = _ring_sums(d, _HBASE, _HS, first_hour, end_hour - first_hour)
        out[12] += a
        out[13] += n
        out[14] += x
    add_minutes(4, current_hour * 60, m)
    return out
