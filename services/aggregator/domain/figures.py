"""Window figures of one key (worker, miner or pool) as a plain dict.

The figures of every record on the snapshot stream (outputs/snapshot_stream.py)
and of the exporter. Every figure is keyed by window ("1m" ... "24h"):
- hashrate (H/s) with its 95% Garwood interval (hashrate_lower/upper),
- shares: N, the accepted shares behind the hashrate,
- submitted: all shares (accepted + rejected + stale),
- shares_per_second: submitted / span (all shares, see windows.py),
- efficiency: accepted / submitted by count, None without shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.confidence import hashrate_interval

from .accumulator import WindowTotals
from .windows import (
    DEFAULT_MULTIPLIER,
    WINDOWS,
    efficiency,
    hashrate_hs,
    shares_per_second,
)

__all__ = ["mean_difficulty", "window_figures"]


def mean_difficulty(totals: WindowTotals) -> float | None:
    """Mean accepted share difficulty over the longest window that has shares."""
    for i in range(len(WINDOWS) - 1, -1, -1):
        if totals.accepted[i] > 0:
            return totals.difficulty[i] / totals.accepted[i]
    return None


def window_figures(
    totals: WindowTotals,
    *,
    multiplier: float = DEFAULT_MULTIPLIER,
    online: bool | None = None,
    last_share_at_ms: int | None = None,
    share_difficulty: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Figures of one key. `share_difficulty` scales the upper bound of windows
    with no share (N = 0): the difficulty the worker was last given, else its mean
    over the longest window with shares; with neither that bound is None."""
    mean = share_difficulty if share_difficulty is not None else mean_difficulty(totals)
    hashrate: dict[str, float] = {}
    lower: dict[str, float] = {}
    upper: dict[str, float | None] = {}
    shares: dict[str, int] = {}
    submitted: dict[str, int] = {}
    sps: dict[str, float] = {}
    eff: dict[str, float | None] = {}
    for i, name in enumerate(WINDOWS):
        span = totals.span_ms[i]
        n = round(totals.accepted[i])  # whole: the 24h window's pro-rata hour may leave a fraction
        rate = hashrate_hs(totals.difficulty[i], span, multiplier)
        per_share = None if mean is None else hashrate_hs(mean, span, multiplier)
        lower[name], upper[name] = hashrate_interval(rate, n, per_share)
        hashrate[name] = rate
        shares[name] = n
        submitted[name] = round(totals.submitted[i])
        sps[name] = shares_per_second(totals.submitted[i], span)
        eff[name] = efficiency(totals.accepted[i], totals.submitted[i])
    out: dict[str, Any] = {
        "as_of_ms": totals.as_of_ms,
        "hashrate": hashrate,
        "hashrate_lower": lower,
        "hashrate_upper": upper,
        "shares": shares,
        "submitted": submitted,
        "shares_per_second": sps,
        "efficiency": eff,
        "online": online,
        "last_share_at_ms": last_share_at_ms,
    }
    if extra:
        out.update(extra)
    return out
