"""Hourly and daily roll-ups of the minute rows (`*_hourly`, `*_daily`, migration 0007).

An owned periodic task recomputes whole UTC hours from the minute rows, then
the days those hours fall in from the hourly rows (domain/rollup_plan.py says
which), with `INSERT ... SELECT sum(...) GROUP BY ... ON CONFLICT DO UPDATE
SET ... = EXCLUDED...`: re-running a pass rewrites the same values, so the job
is idempotent and any number of aggregator processes may run it (a
transaction-level advisory lock per schema makes them take turns). Rows whose
values did not change are not rewritten (no dead tuples), and roll-up rows whose
minute rows are gone are deleted, so a roll-up row is always exactly the sum
of the rows below it.

Difficulty sums add in `ts` order within each group, so the float sum is
bit-for-bit the same on every run whatever order PostgreSQL reads rows in. A
daily row sums its hourly rows (24 per key instead of 1,440 minute rows): it
equals the sum of its minute rows up to float rounding of the difficulty
(counts are exact).

Which hours: those the aggregator changed since the previous pass (from
`on_batch`, late minutes included), the current and previous hour, and on a
lookback pass (at start, then every `lookback_interval_s`) the last
`lookback_hours` hours, so late minute updates within 24 hours are picked up
even if their marks were lost (a crash between persisting and the next pass).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from services.aggregator.config import AggregatorSettings
from services.aggregator.consume.results import BatchResult
from services.aggregator.domain.rollup_plan import HOUR_MS, RollupPlan, plan_pass
from services.aggregator.outputs.telemetry import AggregatorTelemetry
from shared.clock import now_ms
from shared.db.errors import DATABASE_ERRORS
from shared.periodic import PeriodicTask

__all__ = ["ROLLUP_TABLES", "RollupError", "RollupJob", "RollupReport"]

log = logging.getLogger(__name__)

# Second key: hashtext(schema); first: a namespace of its own (0001 uses 614202001).
_LOCK_NAMESPACE: Final = 614202007


@dataclass(frozen=True, slots=True)
class _Level:
    source: str
    target: str
    unit: str  # date_trunc field: "hour" or "day"
    keys: tuple[str, ...]
    # target column -> aggregate over the source rows
    columns: tuple[tuple[str, str], ...]


_MINER_KEYS: Final = ("pool", "miner", "worker")
_POOL_KEYS: Final = ("pool",)


def _shares(minutes: str) -> tuple[tuple[str, str], ...]:
    return (
        ("accepted", "sum(accepted)::bigint"),
        ("rejected", "sum(rejected)::bigint"),
        ("stale", "sum(stale)::bigint"),
        ("difficulty_accepted", "coalesce(sum(difficulty_accepted ORDER BY ts), 0)"),
        ("best_difficulty", "max(best_difficulty)"),
        ("blocks_found", "sum(blocks_found)::integer"),
        ("minutes", minutes),
    )


_LEVELS: Final = (
    _Level("miner_metrics", "miner_metrics_hourly", "hour", _MINER_KEYS,
           (*_shares("count(*)::integer"), ("last_share_at", "max(last_share_at)"))),
    _Level("pool_metrics", "pool_metrics_hourly", "hour", _POOL_KEYS,
           (*_shares("count(*)::integer"), ("active_miners_max", "max(active_miners)"),
            ("active_workers_max", "max(active_workers)"))),
    _Level("miner_metrics_hourly", "miner_metrics_daily", "day", _MINER_KEYS,
           (*_shares("sum(minutes)::integer"), ("last_share_at", "max(last_share_at)"))),
    _Level("pool_metrics_hourly", "pool_metrics_daily", "day", _POOL_KEYS,
           (*_shares("sum(minutes)::integer"), ("active_miners_max", "max(active_miners_max)"),
            ("active_workers_max", "max(active_workers_max)"))),
)
ROLLUP_TABLES: Final = tuple(level.target for level in _LEVELS)


def _upsert_sql(level: _Level) -> str:
    """$1, $2: [start, end) of whole units; recompute every target row in it."""
    keys = ", ".join(level.keys)
    names = [name for name, _ in level.columns]
    bucket = f"date_trunc('{level.unit}', ts, 'UTC')"
    return f"""
INSERT INTO {level.target} AS r ({keys}, ts, {", ".join(names)})
SELECT {keys}, {bucket}, {", ".join(expr for _, expr in level.columns)}
FROM {level.source} WHERE ts >= $1 AND ts < $2
GROUP BY {keys}, {bucket}
ON CONFLICT ({keys}, ts) DO UPDATE SET {", ".join(f"{n} = EXCLUDED.{n}" for n in names)}
WHERE ({", ".join(f"r.{n}" for n in names)}) IS DISTINCT FROM ({", ".join(f"EXCLUDED.{n}" for n in names)})
"""


def _delete_sql(level: _Level) -> str:
    """Target rows in [$1, $2) with no source rows left."""
    match = " AND ".join(f"s.{k} = r.{k}" for k in level.keys)
    return f"""
DELETE FROM {level.target} r WHERE r.ts >= $1 AND r.ts < $2 AND NOT EXISTS (
    SELECT 1 FROM {level.source} s
    WHERE {match} AND s.ts >= r.ts AND s.ts < r.ts + interval '1 {level.unit}')
"""


_STATEMENTS: Final = {level.target: (_upsert_sql(level), _delete_sql(level)) for level in _LEVELS}


class RollupError(Exception):
    """A roll-up pass failed; nothing of the failed range was committed."""

    def __init__(self, table: str, start_ms: int, end_ms: int, cause: BaseException) -> None:
        self.table = table
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.cause = cause
        super().__init__(f"roll-up of {table} for [{_iso(start_ms)}, {_iso(end_ms)}) failed: {cause!r}")


@dataclass(slots=True)
class RollupReport:
    plan: RollupPlan
    lookback: bool
    written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROLLUP_TABLES, 0))
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROLLUP_TABLES, 0))
    duration_s: float = 0.0


def _iso(ms: int) -> str:
    return _ts(ms).isoformat()


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _rows(status: str) -> int:
    """Row count of a command tag such as 'INSERT 0 12' or 'DELETE 3'."""
    return int(status.rsplit(" ", 1)[-1])





class RollupJob:
    def __init__(
        self,
        db_pool: asyncpg.Pool,
        *,
        interval_s: float = 60.0,
        lookback_hours: int = 25,
        lookback_interval_s: float = 3600.0,
        telemetry: AggregatorTelemetry | None = None,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._db = db_pool
        self.lookback_hours = lookback_hours
        self.lookback_interval_ms = int(lookback_interval_s * 1000)
        self._telemetry = telemetry
        self._clock_ms = clock_ms
        self._dirty_hours: set[int] = set()
        self._last_lookback_ms: int | None = None
        self._task = PeriodicTask("rollups", self._step, interval_s)
        self.last_report: RollupReport | None = None

    @classmethod
    def from_settings(cls, settings: AggregatorSettings, db_pool: asyncpg.Pool, **kwargs: Any) -> RollupJob:
        return cls(
            db_pool,
            interval_s=settings.rollup_interval_s,
            lookback_hours=settings.rollup_lookback_hours,
            lookback_interval_s=settings.rollup_lookback_interval_s,
            **kwargs,
        )

    async def start(self) -> None:
        """The first pass (a lookback pass) runs at once in the background."""
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    @property
    def dirty_hours(self) -> frozenset[int]:
        return frozenset(self._dirty_hours)

    def on_batch(self, batch: BatchResult) -> None:
        dirty = self._dirty_hours
        for po in batch.partitions.values():
            for result in (po.shares, po.blocks):
                if result is not None:
                    dirty.update(minute - minute % HOUR_MS for _pool, minute in result.pool_deltas)

    async def _step(self) -> None:
        now_ms = self._clock_ms()
        due = self._last_lookback_ms is None or now_ms - self._last_lookback_ms >= self.lookback_interval_ms
        await self.run_pass(now_ms=now_ms, lookback=due)

    async def run_pass(self, *, now_ms: int | None = None, lookback: bool = False) -> RollupReport:
        """Recompute the planned hours and days; raises RollupError (and keeps the
        dirty marks for the next pass) when PostgreSQL fails."""
        started = time.perf_counter()
        now_ms = self._clock_ms() if now_ms is None else now_ms
        dirty, self._dirty_hours = self._dirty_hours, set()
        plan = plan_pass(now_ms, dirty, self.lookback_hours if lookback else None)
        report = RollupReport(plan, lookback)
        try:
            for level in _LEVELS:
                for start_ms, end_ms in plan.hours if level.unit == "hour" else plan.days:
                    await self._recompute(level, start_ms, end_ms, report)
        except RollupError:
            self._dirty_hours |= dirty
            if self._telemetry is not None:
                self._telemetry.rollup_failures.inc()
            raise
        if lookback:
            self._last_lookback_ms = now_ms
        report.duration_s = time.perf_counter() - started
        self.last_report = report
        if self._telemetry is not None:
            self._telemetry.rollup_pass_s.labels("lookback" if lookback else "recent").observe(report.duration_s)
            for table in ROLLUP_TABLES:
                self._telemetry.rollup_rows.labels(table, "written").inc(report.written[table])
                self._telemetry.rollup_rows.labels(table, "deleted").inc(report.deleted[table])
        return report

    async def _recompute(self, level: _Level, start_ms: int, end_ms: int, report: RollupReport) -> None:
        upsert, delete = _STATEMENTS[level.target]
        lo, hi = _ts(start_ms), _ts(end_ms)
        try:
            async with self._db.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", _LOCK_NAMESPACE)
                written = _rows(await conn.execute(upsert, lo, hi))
                deleted = _rows(await conn.execute(delete, lo, hi))
        except DATABASE_ERRORS as exc:
            raise RollupError(level.target, start_ms, end_ms, exc) from exc
        report.written[level.target] += written
        report.deleted[level.target] += deleted


def statements() -> Sequence[str]:
    """Every statement the job runs (for tests and EXPLAIN)."""
    return [sql for pair in _STATEMENTS.values() for sql in pair]
