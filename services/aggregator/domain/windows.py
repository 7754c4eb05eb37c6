"""Window definitions and the figures computed over a window (contract section 2).

A window ending at `as_of_ms` covers only COMPLETE minutes of event time:
minute starts in [m - W, m) where m = minute_start(as_of_ms). Figures are stable
and lag by at most one minute. Including the partial current minute would make
the 1m hashrate saw-tooth down to 0 at every minute start (the new minute has
barely any shares yet but the divisor is still 60 s) and fire false
"hashrate dropped" alerts; scaling the partial minute up instead would make
the figure noisy for seconds after each minute start.

The 24h window is the exception, for memory: it is kept as hourly sums plus
the minutes of the current hour (see accumulator.py), so its start is rounded
UP to an hour boundary: it covers [ceil_hour(m - 24h), m), between 23h01 and
24h00 of complete minutes, never reaching older than the 24h lateness limit.
Every figure divides by the window's actual span, so it stays an unbiased rate.
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
    "window_range",
    "window_span_ms",
]

HOUR_MS: Final = 60 * MINUTE_MS
WINDOWS: Final[tuple[str, ...]] = tuple(WINDOWS_MS)
# Windows longer than an hour start on an hour boundary (hourly roll-ups).
_HOUR_ALIGNED: Final = frozenset(name for name, ms in WINDOWS_MS.items() if ms > HOUR_MS)


def _ceil_hour(ts_ms: int) -> int:
    return -((-ts_ms) // HOUR_MS) * HOUR_MS


def window_range(window: str, as_of_ms: int) -> tuple[int, int]:
    """[start_ms, end_ms) of the minutes a window covers as of `as_of_ms`."""
    end = minute_start(as_of_ms)
    start = end - WINDOWS_MS[window]
    if window in _HOUR_ALIGNED:
        start = _ceil_hour(start)
    return start, end


def window_span_ms(window: str, as_of_ms: int) -> int:
    start, end = window_range(window, as_of_ms)
    return end - start


def shares_per_second(submitted: float, span_ms: int) -> float:
    """All submitted shares (accepted, rejected and stale) per second: the load a
    worker puts on the pool, which is what an operator watches this figure for."""
    return submitted * 1000.0 / span_ms

