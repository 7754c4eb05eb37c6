"""The figures dict of one key."""

from __future__ import annotations

import pytest

from services.aggregator.domain.accumulator import WindowTotals
from services.aggregator.domain.figures import mean_difficulty, window_figures

from .samples import HOUR, MIN, T0_MS

pytestmark = pytest.mark.unit

SPANS = (MIN, 5 * MIN, 15 * MIN, HOUR, 24 * HOUR)


def test_figures_per_window() -> None:
    totals = WindowTotals(
        T0_MS,
        accepted=(0.0, 10.0, 30.0, 100.0, 2000.0),
        submitted=(0.0, 12.0, 30.0, 110.0, 2200.0),
        difficulty=(0.0, 300.0, 900.0, 3600.0, 86_400.0),
        span_ms=SPANS,
    )
    snap = window_figures(totals, multiplier=1.0, online=True, last_share_at_ms=T0_MS - 5)
    assert snap["as_of_ms"] == T0_MS
    assert snap["hashrate"] == {"1m": 0.0, "5m": 1.0, "15m": 1.0, "1h": 1.0, "24h": 1.0}
    assert snap["shares"] == {"1m": 0, "5m": 10, "15m": 30, "1h": 100, "24h": 2000}
    assert snap["submitted"]["5m"] == 12
    assert snap["shares_per_second"]["5m"] == pytest.approx(12 / 300)
    assert snap["efficiency"] == {"1m": None, "5m": 10 / 12, "15m": 1.0, "1h": 100 / 110, "24h": 2000 / 2200}
    assert snap["hashrate_lower"]["5m"] == pytest.approx(0.4795388696, rel=1e-9)  # Garwood N = 10
    assert snap["hashrate_upper"]["5m"] == pytest.approx(1.839035604, rel=1e-9)
    # no share in the last minute: the upper bound comes from the mean share difficulty
    assert mean_difficulty(totals) == 43.2
    assert snap["hashrate_lower"]["1m"] == 0.0
    assert snap["hashrate_upper"]["1m"] == pytest.approx(3.688879454 * 43.2 / 60, rel=1e-9)
    assert (snap["online"], snap["last_share_at_ms"]) == (True, T0_MS - 5)


def test_no_shares_at_all() -> None:
    snap = window_figures(WindowTotals.empty(T0_MS))
    assert snap["hashrate"]["24h"] == 0.0
    assert snap["hashrate_upper"]["1h"] is None  # no known share size
    assert snap["efficiency"]["1h"] is None
    with_difficulty = window_figures(WindowTotals.empty(T0_MS), share_difficulty=60.0, multiplier=1.0)
    assert with_difficulty["hashrate_upper"]["1m"] == pytest.approx(3.688879454, rel=1e-9)


def test_extra_fields_are_merged() -> None:
    snap = window_figures(WindowTotals.empty(T0_MS), extra={"worker": "w1"})
    assert snap["worker"] == "w1"
