"""Window ranges and the per-window formulas, against hand-computed tables."""

from __future__ import annotations

import pytest

from services.aggregator.domain.windows import (
    WINDOWS,
    WINDOWS_MS,
    efficiency,
    hashrate_hs,
    shares_per_second,
    window_range,
    window_span_ms,
)

from .samples import HOUR, MIN, T0_MS

pytestmark = pytest.mark.unit

T = T0_MS  # on a day, hour and minute boundary


def test_windows_constant() -> None:
    assert WINDOWS_MS == {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "24h": 86_400_000}
    assert WINDOWS == ("1m", "5m", "15m", "1h", "24h")


@pytest.mark.parametrize(
    ("window", "as_of_ms", "expected"),
    [
        # exactly on a minute: the minute just completed is the newest one covered
        ("1m", T, (T - MIN, T)),
        ("5m", T, (T - 5 * MIN, T)),
        ("15m", T, (T - 15 * MIN, T)),
        ("1h", T, (T - HOUR, T)),
        # 1 ms before a boundary: that minute is still partial, so not covered
        ("1m", T - 1, (T - 2 * MIN, T - MIN)),
        ("1h", T - 1, (T - HOUR - MIN, T - MIN)),
        # 1 ms after: same as on the boundary
        ("1m", T + 1, (T - MIN, T)),
        ("5m", T + MIN - 1, (T - 5 * MIN, T)),
        # epoch edges: plain integer arithmetic, floors below zero
        ("1m", 0, (-MIN, 0)),
        ("1m", 59_999, (-MIN, 0)),
        ("5m", 60_000, (-4 * MIN, MIN)),
        ("1m", -1, (-2 * MIN, -MIN)),
        # 24h: start rounded up to the hour, so 23h01 .. 24h00 of complete minutes
        ("24h", T, (T - 24 * HOUR, T)),
        ("24h", T - 1, (T - 24 * HOUR, T - MIN)),  # 23h59
        ("24h", T + MIN, (T - 23 * HOUR, T + MIN)),
        ("24h", T + 59 * MIN + 59_999, (T - 23 * HOUR, T + 59 * MIN)),
        ("24h", T + HOUR, (T - 23 * HOUR, T + HOUR)),
        ("24h", 0, (-24 * HOUR, 0)),
        ("24h", 30 * MIN, (-23 * HOUR, 30 * MIN)),
    ],
)
def test_window_range(window: str, as_of_ms: int, expected: tuple[int, int]) -> None:
    assert window_range(window, as_of_ms) == expected


@pytest.mark.parametrize("offset_ms", [0, 1, MIN, 30 * MIN + 7, HOUR - 1, 5 * HOUR + 17 * MIN])
def test_24h_span_bounds(offset_ms: int) -> None:
    span = window_span_ms("24h", T + offset_ms)
    assert 23 * HOUR < span <= 24 * HOUR
    start, end = window_range("24h", T + offset_ms)
    assert start % HOUR == 0 and end % MIN == 0


@pytest.mark.parametrize(
    ("difficulty", "span_ms", "multiplier", "expected"),
    [
        (60.0, 60_000, 2.0**32, 2.0**32),  # 1 diff/s at SHA-256d = 2^32 H/s
        (300.0, 300_000, 1.0, 1.0),
        (0.0, 60_000, 2.0**32, 0.0),
        (1.5, 60_000, 2.0**16, 1.5 * 65536 / 60),  # a scrypt-like multiplier
        (86_400.0, 86_400_000, 2.0**32, 2.0**32),
        (1000.0, 23 * HOUR + MIN, 1.0, 1000.0 / 82_860),  # a 24h window at 23h01
    ],
)
def test_hashrate(difficulty: float, span_ms: int, multiplier: float, expected: float) -> None:
    assert hashrate_hs(difficulty, span_ms, multiplier) == pytest.approx(expected, rel=1e-15)


def test_shares_per_second_and_efficiency() -> None:
    assert shares_per_second(120, 60_000) == 2.0
    assert shares_per_second(0, 60_000) == 0.0
    assert efficiency(0, 0) is None  # no shares: unknown, not 0% or 100%
    assert efficiency(3, 4) == 0.75
    assert efficiency(0, 5) == 0.0
