"""Window ranges and the per-window formulas, against hand-computed tables."""

from __future__ import annotations

import pytest

from services.aggregator.domain.windows import (
    WINDOWS,
    WINDOWS_MS,
    efficiency,
    hashrate_hs,
    minute_weight,
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
        # 24h: exactly 1,440 complete minutes (its leading partial hour: minute_weight)
        ("24h", T, (T - 24 * HOUR, T)),
        ("24h", T - 1, (T - 24 * HOUR - MIN, T - MIN)),
        ("24h", T + MIN, (T - 24 * HOUR + MIN, T + MIN)),
        ("24h", T + 59 * MIN + 59_999, (T - 23 * HOUR - MIN, T + 59 * MIN)),
        ("24h", 0, (-24 * HOUR, 0)),
        ("24h", 30 * MIN, (-24 * HOUR + 30 * MIN, 30 * MIN)),
    ],
)
def test_window_range(window: str, as_of_ms: int, expected: tuple[int, int]) -> None:
    assert window_range(window, as_of_ms) == expected


@pytest.mark.parametrize("offset_ms", [0, 1, MIN, 30 * MIN + 7, HOUR - 1, 5 * HOUR + 17 * MIN])
def test_every_window_spans_exactly_its_length(offset_ms: int) -> None:
    for name, length in WINDOWS_MS.items():
        assert window_span_ms(name, T + offset_ms) == length


@pytest.mark.parametrize(
    ("window", "as_of_ms", "minute_ms", "weight"),
    [
        # windows kept as minutes: in or out
        ("1h", T, T - HOUR, 1.0),
        ("1h", T, T - HOUR - MIN, 0.0),
        ("1h", T, T - MIN, 1.0),
        ("1h", T, T, 0.0),  # the current minute is not complete
        # 24h on the hour: whole hours only
        ("24h", T, T - 24 * HOUR, 1.0),
        ("24h", T, T - 24 * HOUR - MIN, 0.0),
        # 24h at T + 20 min: minutes from T - 23h40 count whole; the hour before them
        # (T - 24h .. T - 23h) counts at 40/60 for each of its minutes, inside or not
        ("24h", T + 20 * MIN, T - 23 * HOUR, 1.0),
        ("24h", T + 20 * MIN, T - 23 * HOUR - MIN, 40 / 60),
        ("24h", T + 20 * MIN, T - 24 * HOUR + 20 * MIN, 40 / 60),
        ("24h", T + 20 * MIN, T - 24 * HOUR, 40 / 60),
        ("24h", T + 20 * MIN, T - 24 * HOUR - MIN, 0.0),
        ("24h", T + 20 * MIN, T + 20 * MIN, 0.0),
    ],
)
def test_minute_weight(window: str, as_of_ms: int, minute_ms: int, weight: float) -> None:
    assert minute_weight(window, as_of_ms, minute_ms) == pytest.approx(weight, rel=1e-15)


def test_the_leading_hours_weights_add_up_to_the_minutes_inside() -> None:
    # Evenly spread shares: the pro-rata hour counts exactly what lies inside the window.
    for offset in range(0, HOUR, MIN):
        as_of = T + offset
        start, _ = window_range("24h", as_of)
        hour = T - 24 * HOUR
        weights = sum(minute_weight("24h", as_of, hour + i * MIN) for i in range(60))
        inside = sum(1 for i in range(60) if hour + i * MIN >= start)
        assert weights == pytest.approx(inside, abs=1e-9), offset


@pytest.mark.parametrize(
    ("difficulty", "span_ms", "multiplier", "expected"),
    [
        (60.0, 60_000, 2.0**32, 2.0**32),  # 1 diff/s at SHA-256d = 2^32 H/s
        (300.0, 300_000, 1.0, 1.0),
        (0.0, 60_000, 2.0**32, 0.0),
        (1.5, 60_000, 2.0**16, 1.5 * 65536 / 60),  # a scrypt-like multiplier
        (86_400.0, 86_400_000, 2.0**32, 2.0**32),
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
