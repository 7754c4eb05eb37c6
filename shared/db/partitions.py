"""Partitions of the time-series tables: create ahead, drop past retention.

The work happens in the SQL functions of migrations 0001 and 0007
(chimera_ensure_partitions, chimera_ensure_month_partitions,
chimera_drop_partitions_before); this module decides the day ranges. Days are
UTC days, matching the partition bounds. Most tables have daily partitions;
the daily roll-ups have monthly ones (MONTHLY_PARTITIONED_TABLES).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import asyncpg

from shared.db.pool import connect
from shared.settings import ServiceSettings

# Daily partitions, <table>_pYYYYMMDD.
PARTITIONED_TABLES: tuple[str, ...] = (
    "metrics",
    "performance_metrics",
    "miner_metrics",
    "pool_metrics",
    "miner_metrics_hourly",
    "pool_metrics_hourly",
)
# Monthly partitions, <table>_pYYYYMM (years of retention in few partitions).
MONTHLY_PARTITIONED_TABLES: tuple[str, ...] = (
    "miner_metrics_daily",
    "pool_metrics_daily",
)
ALL_PARTITIONED_TABLES: tuple[str, ...] = PARTITIONED_TABLES + MONTHLY_PARTITIONED_TABLES


class PartitionError(Exception):
    """Base class for partition maintenance failures."""


class SchemaNotMigratedError(PartitionError):
    """The partition functions or tables are missing: `chimera migrate` has not run."""

    def __init__(self, table: str, cause: Exception) -> None:
        self.table = table
        self.cause = cause
        super().__init__(f"cannot manage partitions of {table}: {cause} (run `chimera migrate` first)")


class InvalidRetentionError(PartitionError, ValueError):
    """A retention entry names an unknown table or a non-positive number of days."""

    def __init__(self, table: str, days: int, reason: str) -> None:
        self.table = table
        self.days = days
        self.reason = reason
        super().__init__(f"retention for {table!r} = {days} days: {reason}")


def utc_today() -> date:
    return datetime.now(UTC).date()


async def _call(conn: asyncpg.Connection, table: str, query: str, *args: object) -> list[str]:
    try:
        rows = await conn.fetch(query, table, *args)
    except (asyncpg.UndefinedFunctionError, asyncpg.UndefinedTableError) as exc:
        raise SchemaNotMigratedError(table, exc) from exc
    return [row[0] for row in rows]


async def ensure_partitions(
    conn: asyncpg.Connection,
    *,
    days_ahead: int,
    today: date | None = None,
    days_behind: int = 1,
) -> list[str]:
    """Create the missing partitions for today-days_behind .. today+days_ahead
    (daily ones, and the monthly ones those days fall in).

    Idempotent and safe to run concurrently; returns the partitions created.
    One statement per table, so each table's lock is held only briefly.
    """
    if days_ahead < 0 or days_behind < 0:
        raise ValueError(f"days_ahead={days_ahead} and days_behind={days_behind} must be >= 0")
    day = today or utc_today()
    first, last = day - timedelta(days=days_behind), day + timedelta(days=days_ahead)
    created: list[str] = []
    for table in PARTITIONED_TABLES:
        created += await _call(
            conn, table, "SELECT chimera_ensure_partitions($1, $2, $3)", first, last
        )
    for table in MONTHLY_PARTITIONED_TABLES:
        created += await _call(
            conn, table, "SELECT chimera_ensure_month_partitions($1, $2, $3)", first, last
        )
    return created


def _validate(retention_days: Mapping[str, int]) -> None:
    for table, days in retention_days.items():
        if table not in ALL_PARTITIONED_TABLES:
            raise InvalidRetentionError(table, days, f"not one of {', '.join(ALL_PARTITIONED_TABLES)}")
        if days < 1:
            raise InvalidRetentionError(table, days, "must be at least 1 day")


async def apply_retention(
    conn: asyncpg.Connection,
    retention_days: Mapping[str, int],
    *,
    today: date | None = None,
) -> list[str]:
    """Drop partitions wholly older than each table's retention; return their names.

    With N days of retention the partition of day today-N is kept (part of it
    is younger than N days until tomorrow); today-N-1 and older go. A monthly
    partition goes once its whole month is older than that. Tables absent from
    `retention_days` are left alone.
    """
    _validate(retention_days)
    day = today or utc_today()
    dropped: list[str] = []
    for table, days in retention_days.items():
        dropped += await _call(
            conn,
            table,
            "SELECT chimera_drop_partitions_before($1, $2)",
            day - timedelta(days=days),
        )
    return dropped


async def run_retention(settings: ServiceSettings) -> list[str]:
    """`chimera retention`: make partitions ahead, then drop what is past retention."""
    conn = await connect(settings)
    try:
        await ensure_partitions(conn, days_ahead=settings.partitions_ahead_days)
        return await apply_retention(conn, settings.retention_days())
    finally:
        await conn.close()
