"""Window sums against a naive reference that sums every minute afresh: the per-key
WindowAccumulator (pools) and the array-backed WindowRows (workers) alike."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from services.aggregator.domain.accumulator import SERIES_BYTES, WindowAccumulator
from services.aggregator.domain.window_rows import WindowRows
from services.aggregator.domain.windows import WINDOWS, minute_weight

from .samples import HOUR, MIN, T0_MS

pytestmark = pytest.mark.unit

Minutes = dict[int, list[float]]  # minute_start_ms -> [accepted, submitted, difficulty]
Accumulator = WindowAccumulator[str] | WindowRows[str]


@pytest.fixture(params=[WindowAccumulator, WindowRows], ids=["per_key", "rows"])
def make(request: pytest.FixtureRequest) -> type[WindowAccumulator[str]] | type[WindowRows[str]]:
    return request.param  # type: ignore[no-any-return]


def reference(minutes: Minutes, as_of_ms: int) -> list[tuple[float, float, float]]:
    out = []
    for name in WINDOWS:
        weighted = [(minute_weight(name, as_of_ms, t), v) for t, v in minutes.items()]
        a, n, x = (sum((w * r[i] for w, r in weighted), 0.0) for i in range(3))
        out.append((a, n, x))
    return out


def close(got: list[tuple[float, float, float]], want: list[tuple[float, float, float]]) -> bool:
    # Integer-valued sums are exact; the 24h window's pro-rata hour is a float product.
    return all(g == pytest.approx(w, rel=1e-12, abs=1e-9) for g, w in zip(got, want, strict=True))


def observed(acc: Accumulator, key: str, as_of_ms: int) -> list[tuple[float, float, float]]:
    t = acc.totals(key, as_of_ms)
    return list(zip(t.accepted, t.submitted, t.difficulty))


def test_one_minute_moves_through_the_windows(make: type[Accumulator]) -> None:
    acc: Accumulator = make()
    acc.add("w", T0_MS, 3, 4, 30.0)
    assert observed(acc, "w", T0_MS + 59_999)[0] == (0, 0, 0)  # still the partial minute
    expect_in = {  # minutes after T0 -> windows that still cover minute T0
        1: {"1m", "5m", "15m", "1h", "24h"},
        2: {"5m", "15m", "1h", "24h"},
        5: {"5m", "15m", "1h", "24h"},
        6: {"15m", "1h", "24h"},
        16: {"1h", "24h"},
        60: {"1h", "24h"},
        61: {"24h"},
        24 * 60: {"24h"},  # T0 + 24h: window [T0, T0+24h) still holds it
        24 * 60 + 1: {"24h"},  # its hour now counts pro rata: 59/60
        24 * 60 + 59: {"24h"},  # 1/60
        24 * 60 + 60: set(),
    }
    for minutes_after, names in expect_in.items():
        as_of = T0_MS + minutes_after * MIN
        got = observed(acc, "w", as_of)
        for i, name in enumerate(WINDOWS):
            w = minute_weight(name, as_of, T0_MS) if name in names else 0.0
            assert got[i] == pytest.approx((3 * w, 4 * w, 30.0 * w), rel=1e-12), (minutes_after, name)


@pytest.mark.parametrize("seed", range(6))
def test_random_stream_matches_reference(seed: int, make: type[Accumulator]) -> None:
    rng = random.Random(seed)
    acc: Accumulator = make()
    minutes: dict[str, Minutes] = defaultdict(dict)
    now = T0_MS + rng.randrange(HOUR)
    for _ in range(1500):
        roll = rng.random()
        if roll < 0.55:
            now += rng.choice([0, 1_000, 20_000, MIN, 2 * MIN, 7 * MIN, 13 * MIN, HOUR, 5 * HOUR])
        key = rng.choice("abc")
        age = rng.choice([0, 0, 0, MIN, 3 * MIN, 59 * MIN, 61 * MIN, 5 * HOUR, 23 * HOUR, 25 * HOUR])
        minute = (now - age) - (now - age) % MIN
        delta = [float(rng.randrange(1, 4)), 0.0, float(rng.randrange(1, 1000))]  # integer-valued: exact
        delta[1] = delta[0] + rng.randrange(2)
        acc.add(key, minute, *delta)
        row = minutes[key].setdefault(minute, [0.0, 0.0, 0.0])
        for i in range(3):
            row[i] += delta[i]
        if rng.random() < 0.4:
            q = rng.choice("abc")
            assert close(observed(acc, q, now), reference(minutes[q], now))
    for q in "abc":
        assert close(observed(acc, q, now), reference(minutes[q], now))
        t = acc.recomputed(q, now)
        assert close(list(zip(t.accepted, t.submitted, t.difficulty)), observed(acc, q, now))


def test_late_minute_changes_exactly_the_windows_covering_it(make: type[Accumulator]) -> None:
    acc: Accumulator = make()
    for i in range(120):
        acc.add("w", T0_MS + i * MIN, 1, 1, 10.0)
    as_of = T0_MS + 120 * MIN + 5_000
    before = observed(acc, "w", as_of)
    acc.add("w", T0_MS + 110 * MIN, 2, 3, 0.5)  # 10 minutes ago: in 15m, 1h and 24h
    after = observed(acc, "w", as_of)
    for i, name in enumerate(WINDOWS):
        delta = tuple(a - b for a, b in zip(after[i], before[i]))
        assert delta == ((2, 3, 0.5) if name in ("15m", "1h", "24h") else (0, 0, 0)), name
    acc.add("w", T0_MS + 30 * MIN, 1, 1, 4.0)  # 90 minutes ago: in the 24h window only
    assert observed(acc, "w", as_of)[4] == (after[4][0] + 1, after[4][1] + 1, after[4][2] + 4.0)
    assert observed(acc, "w", as_of)[3] == after[3]


@pytest.mark.parametrize("stepwise", [True, False])
def test_everything_returns_to_zero_after_a_day(stepwise: bool, make: type[Accumulator]) -> None:
    acc: Accumulator = make()
    rng = random.Random(1)
    for i in range(200):
        acc.add("w", T0_MS + i * MIN, 1, 2, rng.uniform(0.001, 1e6))  # drift-prone floats
    last = T0_MS + 200 * MIN
    if stepwise:  # minute by minute: the incremental path
        for m in range(1, 27 * 60):
            acc.totals("w", last + m * MIN)
    t = acc.totals("w", last + 26 * HOUR)
    assert t.accepted == t.submitted == t.difficulty == (0.0,) * 5
    assert acc.prune(last + 26 * HOUR) == 1
    assert len(acc) == 0


def test_unknown_key_is_all_zero_and_spans_are_right(make: type[Accumulator]) -> None:
    acc: Accumulator = make()
    t = acc.totals("nobody", T0_MS + 30 * MIN + 5)
    assert t.as_of_ms == T0_MS + 30 * MIN
    assert t.accepted == (0.0,) * 5
    assert t.span_ms == (MIN, 5 * MIN, 15 * MIN, HOUR, 24 * HOUR)


def test_totals_add_up_for_a_miner(make: type[Accumulator]) -> None:
    acc: Accumulator = make()
    acc.add("a", T0_MS, 1, 1, 2.0)
    acc.add("b", T0_MS, 2, 3, 5.0)
    total = acc.totals("a", T0_MS + MIN) + acc.totals("b", T0_MS + MIN)
    assert total.accepted[0] == 3 and total.submitted[0] == 4 and total.difficulty[0] == 7.0


def test_compact_layout() -> None:
    # one array of doubles per key: 61 minute slots, 25 hour slots, 5 windows; 3 fields each
    assert SERIES_BYTES == (61 + 25 + 5) * 3 * 8
