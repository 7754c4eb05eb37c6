"""Stats figures (docs/contract.md section 2) from window sums, table by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.ingest.domain.stats import (
    ONLINE_WITHIN,
    STEP_S,
    WINDOWS_S,
    Step,
    WindowTotals,
    WorkerTotals,
    efficiency,
    filling_windows,
    hashrate_hs,
    history_row,
    history_step,
    is_online,
    miner_stats,
    minute_start,
    pool_stats,
    step_floor,
    window_starts,
)
from shared.confidence import poisson_interval

pytestmark = pytest.mark.unit

T32 = 2.0**32
NO_LUCK: dict[str, float | None] = {"64": None, "128": None, "256": None}
NOW = datetime(2026, 3, 1, 12, 30, 42, 123_000, tzinfo=UTC)
M = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("difficulty", "window_s", "multiplier", "expected"),
    [
        (0.0, 60, T32, 0.0),
        (60.0, 60, T32, T32),  # difficulty 1 per second is 2^32 H/s
        (1.0, 60, T32, T32 / 60),
        (300.0, 300, 1.0, 1.0),
        (86_400.0 * 3, 86_400, T32, 3 * T32),
        (65536.0 * 90, 900, T32, 65536.0 * 90 * T32 / 900),
        (10.0, 60, 2.0**16, 10.0 * 2.0**16 / 60),  # the multiplier is per pool
    ],
)
def test_hashrate(difficulty: float, window_s: int, multiplier: float, expected: float) -> None:
    assert hashrate_hs(difficulty, window_s, multiplier) == expected


@pytest.mark.parametrize(
    ("accepted", "rejected", "stale", "expected"),
    [
        (0, 0, 0, None),
        (10, 0, 0, 1.0),
        (0, 5, 0, 0.0),
        (0, 0, 5, 0.0),
        (3, 1, 0, 0.75),
        (98, 1, 1, 0.98),
        (1, 1, 2, 0.25),
    ],
)
def test_efficiency_is_by_count(accepted: int, rejected: int, stale: int, expected: float | None) -> None:
    assert efficiency(accepted, rejected, stale) == expected


@pytest.mark.parametrize(
    ("last_share_age", "expected"),
    [
        (None, False),
        (timedelta(0), True),
        (timedelta(seconds=30), True),
        (ONLINE_WITHIN, True),
        (ONLINE_WITHIN + timedelta(milliseconds=1), False),
        (timedelta(hours=3), False),
        (-timedelta(seconds=20), True),  # a share stamped slightly ahead of our clock
    ],
)
def test_online_rule(last_share_age: timedelta | None, expected: bool) -> None:
    last = None if last_share_age is None else NOW - last_share_age
    assert is_online(last, NOW) is expected


def test_windows_end_at_the_current_minute_start() -> None:
    assert minute_start(NOW) == M
    starts = window_starts(M)
    assert starts == {
        "1m": M - timedelta(minutes=1),
        "5m": M - timedelta(minutes=5),
        "15m": M - timedelta(minutes=15),
        "1h": M - timedelta(hours=1),
        "24h": M - timedelta(days=1),
    }
    assert list(WINDOWS_S) == ["1m", "5m", "15m", "1h", "24h"]


def test_pool_stats_from_window_totals() -> None:
    totals = {
        "1m": WindowTotals(difficulty=60, accepted=6, rejected=0, stale=0),
        "5m": WindowTotals(difficulty=300, accepted=27, rejected=2, stale=1),
        "15m": WindowTotals(difficulty=900, accepted=90, rejected=5, stale=5),
        "1h": WindowTotals(difficulty=1800, accepted=180, rejected=10, stale=10),
        "24h": WindowTotals(difficulty=8640, accepted=900, rejected=60, stale=40),
    }
    stats = pool_stats(totals, active_miners=3, active_workers=7, blocks_found=2, round_effort=0.25,
                       luck={"64": 1.5, "128": None, "256": None}, as_of=M, multiplier=T32)
    assert stats.hashrate == {"1m": T32, "5m": T32, "15m": T32, "1h": T32 / 2, "24h": T32 / 10}
    assert stats.shares_per_second == 30 / 300  # every status counts, over 5 minutes
    assert stats.efficiency == 900 / 1000  # over 24 hours
    assert (stats.active_miners, stats.active_workers, stats.blocks_found, stats.as_of) == (3, 7, 2, M)
    assert (stats.round_effort, stats.luck["64"]) == (0.25, 1.5)


def test_every_hashrate_by_window_carries_its_shares_and_the_snapshots_interval() -> None:
    """The same Garwood interval as the aggregator's snapshot figures (shared/confidence.py);
    a window without shares is bounded by the mean share of the longest window with some."""
    totals = {"1m": WindowTotals(0, 0, 0, 0), "5m": WindowTotals(300, 30, 0, 0), "24h": WindowTotals(8640, 900, 0, 0)}
    stats = pool_stats(totals, active_miners=1, active_workers=1, blocks_found=0, round_effort=None, luck=NO_LUCK,
                       as_of=M, multiplier=T32)
    assert stats.shares == {"1m": 0, "5m": 30, "15m": 0, "1h": 0, "24h": 900}
    for window, seconds in WINDOWS_S.items():
        n = stats.shares[window]
        lower, upper = poisson_interval(n)
        if n:
            per_share = stats.hashrate[window] / n
        else:
            per_share = (8640 / 900) * T32 / seconds  # mean accepted difficulty of the 24h window
        assert stats.hashrate_lower[window] == pytest.approx(lower * per_share if n else 0.0)
        assert stats.hashrate_upper[window] == pytest.approx(upper * per_share)
        assert stats.hashrate_lower[window] <= stats.hashrate[window] <= stats.hashrate_upper[window]  # type: ignore[operator]
    empty = pool_stats({}, active_miners=0, active_workers=0, blocks_found=0, round_effort=None, luck=NO_LUCK,
                       as_of=M, multiplier=T32)
    assert empty.hashrate_upper == dict.fromkeys(WINDOWS_S)  # no share ever: no scale to bound by
    rig = WorkerTotals("rig", {"5m": WindowTotals(300, 30, 0, 0)})
    miner = miner_stats("alice", [rig], now=NOW, multiplier=T32)
    assert (miner.shares, miner.hashrate_upper) == (miner.workers[0].shares, miner.workers[0].hashrate_upper)


def test_pool_stats_without_data_are_the_empty_figures() -> None:
    stats = pool_stats({}, active_miners=0, active_workers=0, blocks_found=0, round_effort=None, luck=NO_LUCK,
                       as_of=M, multiplier=T32)
    assert stats.hashrate == dict.fromkeys(WINDOWS_S, 0.0)
    assert stats.shares_per_second == 0.0
    assert stats.efficiency is None


def test_miner_stats_sum_workers_before_converting() -> None:
    rig1 = WorkerTotals(
        "rig1",
        {"1m": WindowTotals(30, 3, 0, 0), "5m": WindowTotals(150, 15, 1, 0), "24h": WindowTotals(1000, 90, 5, 5)},
        best_difficulty=512.0, last_share_at=NOW - timedelta(seconds=10),
    )
    rig0 = WorkerTotals("rig0", {"24h": WindowTotals(440, 10, 0, 0)}, best_difficulty=64.0,
                        last_share_at=NOW - timedelta(hours=2))
    stats = miner_stats("alice", [rig1, rig0], now=NOW, multiplier=T32)
    assert stats.miner == "alice"
    assert stats.hashrate == {"1m": 30 * T32 / 60, "5m": 150 * T32 / 300, "15m": 0.0, "1h": 0.0,
                              "24h": 1440 * T32 / 86_400}
    assert stats.efficiency == 100 / 110
    assert [w.worker for w in stats.workers] == ["rig0", "rig1"]  # sorted by name
    w0, w1 = stats.workers
    assert (w1.online, w1.accepted, w1.rejected, w1.stale, w1.best_difficulty) == (True, 90, 5, 5, 512.0)
    assert w1.hashrate["1m"] == 30 * T32 / 60
    assert (w0.online, w0.accepted, w0.last_share_at) == (False, 10, NOW - timedelta(hours=2))
    assert w0.hashrate["1m"] == 0.0


def test_miner_without_recent_rows_has_empty_figures() -> None:
    stats = miner_stats("bob", [], now=NOW, multiplier=T32)
    assert stats.hashrate == dict.fromkeys(WINDOWS_S, 0.0)
    assert stats.efficiency is None
    assert stats.workers == []


@pytest.mark.parametrize(
    ("difficulty", "expected"),
    [(0.0, 0.0), (60.0, T32), (1.5, 1.5 * T32 / 60)],
)
def test_history_row_hashrate_is_per_minute(difficulty: float, expected: float) -> None:
    row = history_row(M, "rig1", 4, 1, 0, difficulty, multiplier=T32)
    assert row.hashrate == expected
    assert (row.ts, row.worker, row.accepted, row.rejected, row.stale, row.difficulty_accepted) == (
        M, "rig1", 4, 1, 0, difficulty)


@pytest.mark.parametrize(
    ("offline_after", "last_share_age", "expected"),
    [
        (NOW + timedelta(seconds=1), timedelta(hours=3), True),  # the aggregator's deadline wins
        (NOW, timedelta(0), False),  # deadline reached: offline, however recent the last share
        (NOW - timedelta(minutes=1), timedelta(seconds=10), False),  # e.g. disconnected
        (None, timedelta(seconds=10), True),  # no status row: the 5-minute rule
        (None, ONLINE_WITHIN + timedelta(seconds=1), False),
    ],
)
def test_online_from_the_status_deadline(offline_after: datetime | None, last_share_age: timedelta,
                                         expected: bool) -> None:
    assert is_online(NOW - last_share_age, NOW, offline_after) is expected


def test_miner_stats_use_the_status_deadline() -> None:
    stale_but_online = WorkerTotals("slow", {}, last_share_at=NOW - timedelta(minutes=12),
                                    offline_after=NOW + timedelta(minutes=3))
    fresh_but_gone = WorkerTotals("gone", {}, last_share_at=NOW - timedelta(seconds=5),
                                  offline_after=NOW - timedelta(seconds=1))
    stats = miner_stats("alice", [stale_but_online, fresh_but_gone], now=NOW, multiplier=T32)
    assert [(w.worker, w.online) for w in stats.workers] == [("gone", False), ("slow", True)]


H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.mark.parametrize(
    ("span", "requested", "expected"),
    [
        (timedelta(minutes=1), None, "1m"),
        (6 * H, None, "1m"),
        (6 * H + timedelta(seconds=1), None, "1h"),
        (14 * D, None, "1h"),
        (14 * D + timedelta(minutes=1), None, "1d"),
        (400 * D, None, "1d"),
        (400 * D, "1m", "1m"),  # an explicit step always wins
        (timedelta(minutes=5), "1d", "1d"),
        (2 * D, "1h", "1h"),
    ],
)
def test_history_step_from_range_or_parameter(span: timedelta, requested: Step | None, expected: Step) -> None:
    assert history_step(M - span, M, requested) == expected


@pytest.mark.parametrize(
    ("step", "expected"),
    [("1m", M), ("1h", datetime(2026, 3, 1, 12, tzinfo=UTC)), ("1d", datetime(2026, 3, 1, tzinfo=UTC))],
)
def test_step_floor(step: Step, expected: datetime) -> None:
    assert step_floor(NOW, step) == expected
    # a time given in another zone floors to the UTC hour and day all the same
    assert step_floor(NOW.astimezone(timezone(timedelta(hours=5, minutes=30))), step) == expected


@pytest.mark.parametrize("step", ["1m", "1h", "1d"])
def test_history_row_hashrate_is_over_its_own_step(step: Step) -> None:
    row = history_row(M, "rig1", 3600, 0, 0, 86_400.0, multiplier=T32, step_s=STEP_S[step])
    assert row.hashrate == 86_400.0 * T32 / STEP_S[step]


_AS_OF = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("first_back", "expected"), [
    (None, dict.fromkeys(WINDOWS_S, False)),                      # no data: nothing claimed
    (timedelta(days=2), dict.fromkeys(WINDOWS_S, False)),         # older than every window
    (timedelta(hours=24), dict.fromkeys(WINDOWS_S, False)),       # exactly the 24h window's start
    (timedelta(hours=24) - timedelta(minutes=1),
     {name: name == "24h" for name in WINDOWS_S}),                # one minute short of 24 hours
    (timedelta(minutes=5), {name: name not in ("1m", "5m") for name in WINDOWS_S}),
    (timedelta(minutes=4, seconds=30),                            # a first share inside minute m-5
     {name: name not in ("1m", "5m") for name in WINDOWS_S}),
    (timedelta(seconds=30), {name: name != "1m" for name in WINDOWS_S}),  # one complete minute
    (-timedelta(seconds=30), dict.fromkeys(WINDOWS_S, True)),     # data only in the current minute
])
def test_filling_windows(first_back: timedelta | None, expected: dict[str, bool]) -> None:
    first = None if first_back is None else _AS_OF - first_back
    assert filling_windows(first, _AS_OF) == expected
