"""Figures of workers, miners and pools across the partition models (pure).

The aggregator keeps one `PoolAggregate` per input partition (a miner's events
all land in one partition), so a miner or worker lives in exactly one model and
a pool's figures are the sum over every model holding it. These functions are
what the snapshot stream and the Prometheus exporter publish.

Two clocks, on purpose:
- `as_of_ms` (windows): every window query of one publication uses the same
  minute, never earlier than what any series was already advanced to
  (`WindowRows.totals` clamps an earlier query, and totals of different
  minutes cannot be added). `sum_totals` re-queries at the latest minute seen
  when another caller advanced some series past the requested one.
- `live_at_ms` (liveness), per model: its event-time watermark while its
  partition lags, so consumer lag cannot fake outages; caught up, the watermark
  moved on by the wall time since it arrived (`liveness_time_ms`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

from .accumulator import WindowTotals
from .blocks import LUCK_WINDOWS
from .figures import window_figures
from .minutes import MINUTE_MS, WorkerKey
from .model import PoolAggregate
from .window_rows import WindowRows
from .windows import DEFAULT_MULTIPLIER

__all__ = [
    "CATCHING_UP_AFTER_MS",
    "MinerKey",
    "PoolActivity",
    "catching_up",
    "common_as_of_ms",
    "liveness_time_ms",
    "miner_figures",
    "pool_activity",
    "pool_figures_from_models",
    "pools_of",
    "sum_totals",
    "worker_figures",
]

MinerKey: TypeAlias = tuple[str, str]  # (pool, miner)
PoolActivity: TypeAlias = dict[str, tuple[int, int]]  # pool -> (active miners, active workers)
_IDENTITY = ("pool", "miner", "worker")


def liveness_time_ms(
    now_ms: int, watermark_ms: int, records_behind: int | None, arrival_ms: int | None = None,
    lag_at_ms: int | None = None,
) -> int:
    """When to judge a partition's workers (never later than the wall clock).

    - behind (records left to read) or lag not known yet: its event-time watermark,
      so consumer lag cannot fake outages;
    - caught up: the watermark moved on by the wall time from the arrival of the record
      that carried it (`arrival_ms`, its Kafka timestamp) to when the partition was last
      known caught up (`lag_at_ms`, when the lag was measured; the wall clock if not
      given). Live, all of these are about the same moment; after a backfill of old event
      time, the workers are judged at their own data's time and a silence counts from the
      backfill's end, not from the start of the replayed hour; and while the consumer
      stalls (PostgreSQL slow or away, a long batch), nothing read means nothing known,
      so the judging time stops where the knowledge does instead of aging every worker;
    - caught up and nothing read yet (an idle partition): when it was known caught up.
    A timestamp ahead of the wall clock counts as arriving now.
    """
    if watermark_ms <= 0:
        return now_ms
    if records_behind is None or records_behind > 0:
        return min(now_ms, watermark_ms)
    known_ms = now_ms if lag_at_ms is None else min(now_ms, lag_at_ms)
    if arrival_ms is None:
        return known_ms
    return min(now_ms, watermark_ms + max(0, known_ms - arrival_ms))


# How far behind the wall clock a partition's data may be before its windows count as
# incomplete: longer than nodes batch events or NTP-kept clocks drift, shorter than a
# quarter of the 15m window a drop rule would judge (a backfill's last minutes then cost a
# healthy miner less than 15% of that window).
CATCHING_UP_AFTER_MS: Final = 2 * 60_000


def catching_up(now_ms: int, watermark_ms: int, records_behind: int | None, arrival_ms: int | None) -> bool:
    """Whether a partition's window figures as of now still lack data that is on its way.

    Windows are taken at the wall clock, so while the aggregator reads old event time
    every miner there looks as if it had dropped; readers should not judge such figures.
    True when the data is more than `CATCHING_UP_AFTER_MS` behind the wall clock and
    either records are left to read (a restart's or an outage's lag, or the lag is not
    known yet), or the newest records arrived lately but carry old event time (a node
    replaying what it held back). A backfill that ended that long ago is over: what the
    partition holds is then what there is.
    """
    if watermark_ms <= 0 or now_ms - watermark_ms <= CATCHING_UP_AFTER_MS:
        return False
    if records_behind is None or records_behind > 0:
        return True
    if arrival_ms is None:
        return False
    return now_ms - arrival_ms <= CATCHING_UP_AFTER_MS and arrival_ms - watermark_ms > CATCHING_UP_AFTER_MS


def common_as_of_ms(now_ms: int, watermarks_ms: Iterable[int], floor_ms: int = 0) -> int:
    """The time window figures are taken at: the latest of the wall clock, the
    models' watermarks (events may be stamped up to 5 minutes ahead) and `floor_ms`
    (the previous publication's, so the figures never go back in time)."""
    return max(now_ms, floor_ms, *watermarks_ms)


def sum_totals(fetch: Callable[[int], Iterable[WindowTotals]], as_of_ms: int) -> WindowTotals:
    """Sum of the totals `fetch(as_of_ms)` returns, all taken as of one minute.

    If some series were already advanced past `as_of_ms` (they come back as of a
    later minute), everything is fetched again as of the latest one."""
    items = list(fetch(as_of_ms))
    wanted = as_of_ms - as_of_ms % MINUTE_MS
    latest = max((t.as_of_ms for t in items), default=wanted)
    if any(t.as_of_ms != latest for t in items):
        items = list(fetch(latest))
        latest = max((t.as_of_ms for t in items), default=latest)
    total = WindowTotals.empty(latest)
    for t in items:
        total = total + t
    return total


def _totals_of(acc: WindowRows[Any], keys: Sequence[Any]) -> Callable[[int], Iterable[WindowTotals]]:
    return lambda as_of: acc.totals_list(keys, as_of)


def worker_figures(model: PoolAggregate, key: WorkerKey, as_of_ms: int, live_at_ms: int) -> dict[str, Any]:
    """`window_figures` of one worker (without its identity keys)."""
    figures = model.worker_figures(key, as_of_ms)
    for name in _IDENTITY:
        figures.pop(name, None)
    figures["online"] = model.liveness.is_online(key, live_at_ms)
    return figures


def miner_figures(
    model: PoolAggregate, pool: str, miner: str, workers: Iterable[str], as_of_ms: int, live_at_ms: int
) -> dict[str, Any]:
    """Figures of one miner: its workers' window sums; online while any worker is;
    plus `workers_total` and `workers_online`."""
    keys = [(pool, miner, w) for w in workers if (pool, miner, w) in model.workers]
    liveness = model.liveness
    online = sum(1 for k in keys if liveness.is_online(k, live_at_ms))
    last = [ms for ms in (liveness.last_share_ms(k) for k in keys) if ms is not None]
    return window_figures(
        sum_totals(_totals_of(model.workers, keys), as_of_ms),
        multiplier=model.multiplier,
        online=online > 0,
        last_share_at_ms=max(last) if last else None,
        extra={"workers_total": len(keys), "workers_online": online},
    )


def pools_of(models: Iterable[PoolAggregate]) -> set[str]:
    """Every pool some model has share figures for."""
    return {pool for model in models for pool in model.pools.keys()}  # noqa: SIM118 - no __iter__


def pool_activity(models: Iterable[tuple[PoolAggregate, int]]) -> PoolActivity:
    """(active miners, active workers) per pool, each model judged at its own time.

    One pass over each model's workers (Liveness.active_* would take two per pool).
    Workers and miners are disjoint across models, so the counts add up."""
    workers: dict[str, int] = {}
    miners: dict[str, set[str]] = {}
    for model, live_at_ms in models:
        for pool, miner, _worker in model.liveness.online_workers(live_at_ms):
            workers[pool] = workers.get(pool, 0) + 1
            miners.setdefault(pool, set()).add(miner)
    return {pool: (len(miners[pool]), n) for pool, n in workers.items()}


def pool_figures_from_models(
    pool: str, models: Sequence[PoolAggregate], as_of_ms: int, activity: Mapping[str, tuple[int, int]]
) -> dict[str, Any]:
    """Figures of one pool summed over the models holding it, plus `active_miners`,
    `active_workers`, `blocks_found`, `round_effort` and `luck` (by last-n blocks).

    Round effort and luck need all of the pool's shares in one ledger: they are
    given when a single model holds the pool, else None (not a wrong number).
    (The snapshot publisher reads pool figures from the database when it can:
    outputs/pool_queries.py; this is its fallback without one.)"""
    holders = [m for m in models if pool in m.pools or m.ledger.blocks_found(pool)]
    with_shares = [m for m in holders if pool in m.pools]
    multiplier = next((m.multiplier for m in (*holders, *models)), DEFAULT_MULTIPLIER)
    totals = sum_totals(lambda as_of: [m.pools.totals(pool, as_of) for m in with_shares], as_of_ms)
    single = holders[0] if len(holders) == 1 else None
    miners, workers = activity.get(pool, (0, 0))
    return window_figures(
        totals,
        multiplier=multiplier,
        extra={
            "active_miners": miners,
            "active_workers": workers,
            "blocks_found": sum(m.ledger.blocks_found(pool) for m in holders),
            "round_effort": single.ledger.current_effort(pool) if single else None,
            "luck": {str(n): single.ledger.luck(pool, n).luck if single else None for n in LUCK_WINDOWS},
        },
    )
