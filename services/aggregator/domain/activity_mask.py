"""One worker's or miner's share-minutes as one int (MinuteMask), and the run of minutes a new
share-minute makes active: the definitions activity.py counts with (see its docstring), and
the form worker_status rows persist (`as_row`/`from_row`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .minutes import MINUTE_MS

__all__ = ["ACTIVE_SPAN_MINUTES", "MinuteMask", "newly_active_range"]

ACTIVE_SPAN_MINUTES: Final = 10
_WINDOW_BITS: Final = 2 * ACTIVE_SPAN_MINUTES - 1  # minutes t-9 .. t+9 around a new share-minute
_BEFORE_BITS: Final = (1 << (ACTIVE_SPAN_MINUTES - 1)) - 1  # minutes t-9 .. t-1 of that window


def newly_active_range(around: int) -> range:
    """Offsets k (0..9) of the minutes t+k a new share-minute t makes active: always one run.

    `around` holds the share-minutes t-9 .. t+9 known BEFORE t (bit j = minute
    t-9+j; bit 9, t itself, is clear). Minute t+k was active already when a
    share-minute lies in t+k-9 .. t+k, i.e. among bits k .. k+9. The nearest earlier
    share-minute t-9+p covers the minutes up to t+p and the nearest later one t+1+q
    those from t+1+q on, so what is new is exactly p+1 .. q (a run, maybe empty).
    """
    lo = (around & _BEFORE_BITS).bit_length()  # p + 1, or 0 when nothing is before t
    after = around >> ACTIVE_SPAN_MINUTES
    hi = (after & -after).bit_length() if after else ACTIVE_SPAN_MINUTES  # q + 1, or the whole span
    return range(lo, hi)


@dataclass(slots=True)
class MinuteMask:
    """Share-minutes of one worker or miner: bit i = minute `base + i` (minute numbers, not ms)."""

    base: int
    bits: int = 0

    @property
    def head(self) -> int:
        """The newest share-minute (base - 1 when empty)."""
        return self.base + self.bits.bit_length() - 1

    def window(self, first: int, width: int) -> int:
        """Bits of minutes first .. first+width-1 (bit 0 = `first`)."""
        shift = first - self.base
        bits = self.bits >> shift if shift >= 0 else self.bits << -shift
        return bits & ((1 << width) - 1)

    def add(self, minute: int, horizon_minutes: int) -> range:
        """Mark `minute`; the minutes it newly makes active, one run (empty if it was marked)."""
        if self.bits and minute < self.head - horizon_minutes:
            return _NOTHING  # beyond the horizon: a share that is not too late never lands here
        if minute < self.base:
            self.bits <<= self.base - minute
            self.base = minute
        offset = minute - self.base
        if (self.bits >> offset) & 1:
            return _NOTHING
        around = self.window(minute - ACTIVE_SPAN_MINUTES + 1, _WINDOW_BITS)
        self.bits |= 1 << offset
        self._trim(horizon_minutes)
        new = newly_active_range(around)
        return range(minute + new.start, minute + new.stop)

    def _trim(self, horizon_minutes: int) -> None:
        oldest = self.head - horizon_minutes
        if oldest > self.base:
            self.bits >>= oldest - self.base
            self.base = oldest

    def union(self, other: MinuteMask, horizon_minutes: int) -> None:
        """Add every share-minute of `other` (no activity counted: restoring, not ingesting)."""
        if not other.bits:
            return
        if other.base < self.base:
            self.bits <<= self.base - other.base
            self.base = other.base
        self.bits |= other.bits << (other.base - self.base)
        self._trim(horizon_minutes)

    def as_row(self) -> tuple[int, bytes]:
        """(base minute as epoch ms, the bits little-endian): what worker_status stores."""
        return self.base * MINUTE_MS, self.bits.to_bytes((self.bits.bit_length() + 7) // 8, "little")

    @classmethod
    def from_row(cls, base_ms: int, data: bytes) -> MinuteMask:
        return cls(base_ms // MINUTE_MS, int.from_bytes(data, "little"))


_NOTHING: Final = range(0)
