"""Window definitions and the figures computed over a window (contract section 2).

A window ending at `as_of_ms` covers only COMPLETE minutes of event time:
minute starts in [m - W, m) where m = minute_start(as_of_ms). Figures are stable
and lag by at most one minute. Including the partial current minute would make
the 1m hashrate saw-tooth down to 0 at every minute start (the new minute has
barely any shares yet but the divisor is still 60 s) and fire false
"hashrate dropped" alerts; scaling the partial minute up instead would make
the figure noisy for seconds after each minute start.

Every window divides by its nominal span W (contract section 2: "over a
window of W seconds"). The 24h window is kept, for memory, as hourly sums plus
the minutes of the current hour (see accumulator.py), so the minutes of its
leading partial hour are not known one by one: that hour counts at the
fraction of it the window covers, its shares taken as evenly spread over the
hour (as `chimera_pool_work` does for rounds). `minute_weight` is that rule,
minute by minute. A pool or worker younger than a day is then exactly the
contract's figure; otherwise the error is that one hour's unevenness.
"""

from __future__ import annotations

from typing import Final

from shared.hashrate import DEFAULT_MULTIPLIER, WINDOWS_MS, efficiency, hashrate_hs

from .minutes import MINUTE_MS, minute_start

__all__ = [
    "DEFAULT_MULTIPLIER",
    "HOUR_MS",
    "WINDOWS",
    "WINDOWS_MS",
    "efficiency",
    "hashrate_hs",
    "shares_per_second",
    "minute_weight",
    "window_range",
    "window_span_ms",
]

HOUR_MS: Final = 60 * MINUTE_MS
WINDOWS: Final[tuple[str, ...]] = tuple(WINDOWS_MS)
# Windows longer than an hour are kept as hourly sums (their leading partial hour pro rata).
_KEPT_AS_HOURS: Final = frozenset(name for name, ms in WINDOWS_MS.items() if ms > HOUR_MS)


def _ceil_hour(ts_ms: int) -> int:
    return -((-ts_ms) // HOUR_MS) * HOUR_MS


def window_range(window: str, as_of_ms: int) -> tuple[int, int]:
    """[start_ms, end_ms) of the complete minutes a window covers as of `as_of_ms`."""
    end = minute_start(as_of_ms)
    return end - WINDOWS_MS[window], end


def minute_weight(window: str, as_of_ms: int, minute_ms: int) -> float:
    """The share of a complete minute's figures a window counts: 1 inside, 0 outside, and
    for the 24h window's leading partial hour, the fraction of that hour inside the window
    (for each of its minutes, before the window's start included: see the module docstring)."""
    start, end = window_range(window, as_of_ms)
    if minute_ms >= end:
        return 0.0
    if minute_ms >= start and (window not in _KEPT_AS_HOURS or minute_ms >= _ceil_hour(start)):
        return 1.0
    whole_hours_from = _ceil_hour(start)
    if window in _KEPT_AS_HOURS and whole_hours_from - HOUR_MS <= minute_ms < whole_hours_from:
        return (whole_hours_from - start) / HOUR_MS
    return 0.0


def window_span_ms(window: str, as_of_ms: int) -> int:
    start, end = window_range(window, as_of_ms)
    return end - start


def shares_per_second(submitted: float, span_ms: int) -> float:
    """All submitted shares (accepted, rejected and stale) per second: the load a
    worker puts on the pool, which is what an operator watches this figure for."""
    return submitted * 1000.0 / span_ms

