"""The figures of the stats API (docs/contract.md sections 2 and 3), from the aggregator's minute rows.

Windows are made of COMPLETE minutes only: with `m` the start of the current
minute, window W covers [m - W, m). The current minute is still filling (and
late shares keep landing in recent minutes for a while), so figures computed
from complete minutes are stable, and lag real time by at most one minute;
`as_of` says which minute they end at.

- hashrate(W) = sum(difficulty_accepted over W) * hashrate_multiplier / W seconds
- efficiency = accepted / (accepted + rejected + stale), by count, over
  EFFICIENCY_WINDOW; None when there were no shares
- shares_per_second = all shares (any status) over SHARES_RATE_WINDOW / its seconds
- a worker is online while now < its `offline_after` in `worker_status`: the
  deadline the aggregator derives from the worker's own share rate (or its
  disconnect); a worker without a status row falls back to "last share at
  most ONLINE_WITHIN old" (`is_online`)
- history rows come at a resolution (`step`): minutes, hours or days (the
  aggregator's roll-ups), chosen by the caller or from the range's length
  (`history_step`); a row's hashrate is over its own step

Pure functions over plain data; the SQL that gathers the sums is in adapters/stats.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeAlias

from shared.confidence import hashrate_interval
from shared.hashrate import WINDOWS_MS
from shared.hashrate import efficiency as contract_efficiency
from shared.hashrate import hashrate_hs as contract_hashrate_hs

WINDOWS_S: Final[dict[str, int]] = {name: ms // 1000 for name, ms in WINDOWS_MS.items()}
EFFICIENCY_WINDOW: Final = "24h"
# Per-worker accepted/rejected/stale/best_difficulty cover the same window as efficiency.
WORKER_TOTALS_WINDOW: Final = EFFICIENCY_WINDOW
SHARES_RATE_WINDOW: Final = "5m"
ONLINE_WITHIN: Final = timedelta(minutes=5)
MINUTE: Final = timedelta(minutes=1)
MINUTE_S: Final = 60

Step: TypeAlias = Literal["1m", "1h", "1d"]
STEP_S: Final[dict[Step, int]] = {"1m": 60, "1h": 3600, "1d": 86_400}
# Default resolution by range length: up to 6 hours minutes (360 rows per worker),
# up to 14 days hours (336), beyond that days.
MINUTE_ROWS_UP_TO: Final = timedelta(hours=6)
HOUR_ROWS_UP_TO: Final = timedelta(days=14)


def minute_start(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def window_starts(m: datetime) -> dict[str, datetime]:
    """Start of each window ending at minute `m` (exclusive end)."""
    return {name: m - timedelta(seconds=seconds) for name, seconds in WINDOWS_S.items()}


def hashrate_hs(difficulty_sum: float, window_s: int, multiplier: float) -> float:
    """Hashes per second behind `difficulty_sum` of accepted shares over `window_s` seconds."""
    return contract_hashrate_hs(difficulty_sum, window_s * 1000, multiplier)


def efficiency(accepted: int, rejected: int, stale: int) -> float | None:
    return contract_efficiency(accepted, accepted + rejected + stale)


def is_online(last_share_at: datetime | None, now: datetime, offline_after: datetime | None = None) -> bool:
    """Online while now < `offline_after` (the aggregator's liveness, from
    `worker_status`); without a status row, while the last share is at most
    ONLINE_WITHIN old."""
    if offline_after is not None:
        return now < offline_after
    return last_share_at is not None and now - last_share_at <= ONLINE_WITHIN


def history_step(start: datetime, end: datetime, step: Step | None = None) -> Step:
    """The resolution of a history request: `step` if given, else by the range's length."""
    if step is not None:
        return step
    span = end - start
    if span <= MINUTE_ROWS_UP_TO:
        return "1m"
    if span <= HOUR_ROWS_UP_TO:
        return "1h"
    return "1d"


def step_floor(ts: datetime, step: Step) -> datetime:
    """Start of the UTC minute, hour or day `ts` falls in."""
    ts = ts.astimezone(UTC)
    if step == "1m":
        return ts.replace(second=0, microsecond=0)
    if step == "1h":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class WindowTotals:
    """Sums over one window's complete minutes."""

    difficulty: float = 0.0
    accepted: int = 0
    rejected: int = 0
    stale: int = 0

    @property
    def shares(self) -> int:
        return self.accepted + self.rejected + self.stale

    def __add__(self, other: WindowTotals) -> WindowTotals:
        return WindowTotals(self.difficulty + other.difficulty, self.accepted + other.accepted,
                            self.rejected + other.rejected, self.stale + other.stale)


Totals = Mapping[str, WindowTotals]  # window name -> totals; a missing window means nothing there


def _get(totals: Totals, window: str) -> WindowTotals:
    return totals.get(window) or WindowTotals()


def hashrates(totals: Totals, multiplier: float) -> dict[str, float]:
    return {name: hashrate_hs(_get(totals, name).difficulty, seconds, multiplier)
            for name, seconds in WINDOWS_S.items()}


@dataclass(frozen=True)
class Intervals:
    """Beside each window's hashrate: the accepted shares behind it and its 95% interval."""

    shares: dict[str, int]
    hashrate_lower: dict[str, float]
    hashrate_upper: dict[str, float | None]


def intervals(totals: Totals, rates: Mapping[str, float], multiplier: float) -> Intervals:
    """Garwood's interval per window (shared/confidence.py, as the aggregator's snapshots).
    A window without shares is scaled by the mean accepted difficulty of the longest window
    that has some; with none at all its upper bound is unknown (None). `rates`: the
    windows' hashrates (`hashrates`)."""
    longest = next((t for name in reversed(list(WINDOWS_S)) if (t := _get(totals, name)).accepted > 0), None)
    mean = longest.difficulty / longest.accepted if longest is not None else None
    shares: dict[str, int] = {}
    lower: dict[str, float] = {}
    upper: dict[str, float | None] = {}
    for name, seconds in WINDOWS_S.items():
        t = _get(totals, name)
        per_share = None if mean is None else hashrate_hs(mean, seconds, multiplier)
        shares[name] = t.accepted
        lower[name], upper[name] = hashrate_interval(rates[name], t.accepted, per_share)
    return Intervals(shares, lower, upper)


def window_efficiency(totals: Totals) -> float | None:
    t = _get(totals, EFFICIENCY_WINDOW)
    return efficiency(t.accepted, t.rejected, t.stale)


@dataclass(frozen=True)
class PoolStats:
    hashrate: dict[str, float]
    shares: dict[str, int]
    hashrate_lower: dict[str, float]
    hashrate_upper: dict[str, float | None]
    shares_per_second: float
    active_miners: int
    active_workers: int
    efficiency: float | None
    blocks_found: int
    round_effort: float | None  # accepted difficulty since the latest block / its network difficulty
    luck: dict[str, float | None]  # over the last n blocks ("64", "128", "256"): found / expected
    as_of: datetime
    first_data_at: datetime | None = None  # the pool's oldest minute row kept; None without data
    # Per window: it reaches back before the pool's first data, so its figure reads low.
    filling: dict[str, bool] = field(default_factory=dict)


def filling_windows(first_data_at: datetime | None, as_of: datetime) -> dict[str, bool]:
    """Window W ends at minute `as_of` (exclusive) and starts W before it: filling while
    it starts before the pool's first minute of data. Without data nothing is claimed."""
    return {name: first_data_at is not None and start < minute_start(first_data_at)
            for name, start in window_starts(as_of).items()}


def pool_stats(totals: Totals, *, active_miners: int, active_workers: int, blocks_found: int,
               round_effort: float | None, luck: dict[str, float | None],
               as_of: datetime, multiplier: float, first_data_at: datetime | None = None) -> PoolStats:
    rates = hashrates(totals, multiplier)
    bounds = intervals(totals, rates, multiplier)
    return PoolStats(
        hashrate=rates,
        shares=bounds.shares,
        hashrate_lower=bounds.hashrate_lower,
        hashrate_upper=bounds.hashrate_upper,
        shares_per_second=_get(totals, SHARES_RATE_WINDOW).shares / WINDOWS_S[SHARES_RATE_WINDOW],
        active_miners=active_miners,
        active_workers=active_workers,
        efficiency=window_efficiency(totals),
        blocks_found=blocks_found,
        round_effort=round_effort,
        luck=luck,
        as_of=as_of,
        first_data_at=first_data_at,
        filling=filling_windows(first_data_at, as_of),
    )


@dataclass(frozen=True)
class WorkerTotals:
    """What the SQL gathers per worker: window sums, best difficulty, last share (current minute included)."""

    worker: str
    totals: Totals = field(default_factory=dict)
    best_difficulty: float = 0.0
    last_share_at: datetime | None = None
    offline_after: datetime | None = None  # from worker_status; None without a status row


@dataclass(frozen=True)
class WorkerStats:
    worker: str
    online: bool
    last_share_at: datetime | None
    hashrate: dict[str, float]
    shares: dict[str, int]
    hashrate_lower: dict[str, float]
    hashrate_upper: dict[str, float | None]
    accepted: int
    rejected: int
    stale: int
    best_difficulty: float


@dataclass(frozen=True)
class MinerStats:
    miner: str
    hashrate: dict[str, float]
    shares: dict[str, int]
    hashrate_lower: dict[str, float]
    hashrate_upper: dict[str, float | None]
    efficiency: float | None
    workers: list[WorkerStats]


def miner_stats(miner: str, workers: Sequence[WorkerTotals], *, now: datetime,
                multiplier: float) -> MinerStats:
    # Sum the difficulties first, then convert once: the miner's figure is
    # exactly what its summed minutes give, not a sum of rounded rates.
    combined: dict[str, WindowTotals] = {name: WindowTotals() for name in WINDOWS_S}
    out: list[WorkerStats] = []
    for w in sorted(workers, key=lambda w: w.worker):
        for name in WINDOWS_S:
            combined[name] = combined[name] + _get(w.totals, name)
        t = _get(w.totals, WORKER_TOTALS_WINDOW)
        rates = hashrates(w.totals, multiplier)
        bounds = intervals(w.totals, rates, multiplier)
        out.append(WorkerStats(
            worker=w.worker,
            online=is_online(w.last_share_at, now, w.offline_after),
            last_share_at=w.last_share_at,
            hashrate=rates,
            shares=bounds.shares,
            hashrate_lower=bounds.hashrate_lower,
            hashrate_upper=bounds.hashrate_upper,
            accepted=t.accepted,
            rejected=t.rejected,
            stale=t.stale,
            best_difficulty=w.best_difficulty,
        ))
    rates = hashrates(combined, multiplier)
    bounds = intervals(combined, rates, multiplier)
    return MinerStats(miner=miner, hashrate=rates, shares=bounds.shares,
                      hashrate_lower=bounds.hashrate_lower, hashrate_upper=bounds.hashrate_upper,
                      efficiency=window_efficiency(combined), workers=out)


@dataclass(frozen=True)
class HistoryRow:
    ts: datetime  # start of the row's minute, hour or day
    worker: str
    accepted: int
    rejected: int
    stale: int
    difficulty_accepted: float
    hashrate: float


def history_row(ts: datetime, worker: str, accepted: int, rejected: int, stale: int,
                difficulty_accepted: float, *, multiplier: float, step_s: int = MINUTE_S) -> HistoryRow:
    """One history row; its hashrate is over the row's own step (`step_s` seconds)."""
    return HistoryRow(ts, worker, accepted, rejected, stale, difficulty_accepted,
                      hashrate_hs(difficulty_accepted, step_s, multiplier))


@dataclass(frozen=True)
class PoolHistoryRow:
    ts: datetime  # start of the row's minute, hour or day
    accepted: int
    rejected: int
    stale: int
    difficulty_accepted: float
    hashrate: float
    hashrate_lower: float
    hashrate_upper: float | None
    active_miners: int  # minutes: active in that minute; hours and days: the largest minute's count
    active_workers: int
    blocks_found: int


def pool_history_row(ts: datetime, accepted: int, rejected: int, stale: int, difficulty_accepted: float, *,
                     active_miners: int, active_workers: int, blocks_found: int, multiplier: float,
                     step_s: int) -> PoolHistoryRow:
    """One pool history row, its hashrate and 95% interval over its own step; a row without
    accepted shares has no measured share size, so its upper bound is unknown (None)."""
    rate = hashrate_hs(difficulty_accepted, step_s, multiplier)
    lower, upper = hashrate_interval(rate, accepted)
    return PoolHistoryRow(ts, accepted, rejected, stale, difficulty_accepted, rate, lower, upper,
                          active_miners, active_workers, blocks_found)
