"""Daily partitions of the time-series tables: creation ahead, default-partition
draining, and retention, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import pytest

from shared.db import (
    PARTITIONED_TABLES,
    InvalidRetentionError,
    SchemaNotMigratedError,
    apply_retention,
    connect,
    ensure_partitions,
    run_retention,
)
from shared.db.partitions import MONTHLY_PARTITIONED_TABLES, utc_today
from shared.settings import ServiceSettings

pytestmark = pytest.mark.integration

# Far from the real today, so partitions made by `chimera migrate` never interfere.
FIXED_TODAY = date(2024, 6, 30)


def part(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def month_part(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m}"


def months(first: date, last: date) -> list[date]:
    out = [first.replace(day=1)]
    while out[-1] < last.replace(day=1):
        out.append((out[-1] + timedelta(days=32)).replace(day=1))
    return out


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


async def partitions(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = to_regclass($1)""",
        table,
    )
    return {r["relname"] for r in rows}


async def located(conn: asyncpg.Connection, table: str) -> dict[datetime, str]:
    """Where each row of `table` lives: ts -> partition name."""
    rows = await conn.fetch(f"SELECT ts, tableoid::regclass::text AS part FROM {table}")
    return {r["ts"]: r["part"] for r in rows}


# One representative row per table; miner_metrics goes through the aggregator's upsert.
SAMPLE_INSERTS = {
    "metrics": "INSERT INTO metrics (name, value, labels, ts)"
    " VALUES ('pool_hashrate', 1.5, '{\"region\": \"eu\"}', $1)",
    "performance_metrics": "INSERT INTO performance_metrics (host, service, cpu_usage, ts)"
    " VALUES ('node-1', 'stratum', 12.5, $1)",
    "miner_metrics": """INSERT INTO miner_metrics (pool, miner, worker, ts, accepted, difficulty_accepted)
        VALUES ('eu1', 'bc1qminer', 'rig1', $1, 10, 5e5)
        ON CONFLICT (pool, miner, worker, ts) DO UPDATE
        SET accepted = miner_metrics.accepted + excluded.accepted""",
    "pool_metrics": "INSERT INTO pool_metrics (pool, ts, accepted, active_miners)"
    " VALUES ('eu1', $1, 10, 3)",
    "miner_metrics_hourly": "INSERT INTO miner_metrics_hourly (pool, miner, worker, ts, accepted)"
    " VALUES ('eu1', 'bc1qminer', 'rig1', $1, 10)",
    "pool_metrics_hourly": "INSERT INTO pool_metrics_hourly (pool, ts, accepted) VALUES ('eu1', $1, 10)",
    "miner_metrics_daily": "INSERT INTO miner_metrics_daily (pool, miner, worker, ts, accepted)"
    " VALUES ('eu1', 'bc1qminer', 'rig1', $1, 10)",
    "pool_metrics_daily": "INSERT INTO pool_metrics_daily (pool, ts, accepted) VALUES ('eu1', $1, 10)",
}


async def insert_sample(conn: asyncpg.Connection, table: str, ts: datetime) -> None:
    await conn.execute(SAMPLE_INSERTS[table], ts)


async def test_partitions_exist_ahead_and_take_todays_rows(
    migrated_conn: asyncpg.Connection, db_settings: ServiceSettings
) -> None:
    today = utc_today()
    ahead = db_settings.partitions_ahead_days
    for table in PARTITIONED_TABLES:
        existing = await partitions(migrated_conn, table)
        wanted = {part(table, d) for d in days(today - timedelta(days=1), today + timedelta(days=ahead))}
        assert wanted <= existing, sorted(wanted - existing)
        assert f"{table}_default" in existing

        now = datetime.now(UTC)
        await insert_sample(migrated_conn, table, now)
        assert (await located(migrated_conn, table))[now] == part(table, now.date())


async def test_daily_partitions_carry_the_parent_indexes(migrated_conn: asyncpg.Connection) -> None:
    today = part("miner_metrics", utc_today())
    count = await migrated_conn.fetchval(
        "SELECT count(*) FROM pg_index WHERE indrelid = to_regclass($1)", today
    )
    assert count == 2  # primary key + (miner, ts)
    ts = datetime.now(UTC).replace(second=0, microsecond=0)
    await insert_sample(migrated_conn, "miner_metrics", ts)
    await insert_sample(migrated_conn, "miner_metrics", ts)  # the upsert adds up
    assert await migrated_conn.fetchval("SELECT accepted FROM miner_metrics WHERE ts = $1", ts) == 20


async def test_bounds_are_utc_midnights_whatever_the_session_time_zone(
    migrated_conn: asyncpg.Connection,
) -> None:
    await migrated_conn.execute("SET TIME ZONE 'Asia/Kolkata'")
    await ensure_partitions(migrated_conn, days_ahead=0, days_behind=0, today=FIXED_TODAY)
    bounds = await migrated_conn.fetchrow(
        """SELECT (regexp_match(b, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS lo,
                  (regexp_match(b, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS hi
           FROM (SELECT pg_get_expr(relpartbound, oid) AS b FROM pg_class
                 WHERE oid = to_regclass($1)) AS p""",
        part("metrics", FIXED_TODAY),
    )
    assert bounds["lo"] == datetime.combine(FIXED_TODAY, time(), UTC)
    assert bounds["hi"] == datetime.combine(FIXED_TODAY + timedelta(days=1), time(), UTC)
    # Retention parses those bounds back in the same odd time zone.
    dropped = await apply_retention(
        migrated_conn, {"metrics": 1}, today=FIXED_TODAY + timedelta(days=2)
    )
    assert dropped == [part("metrics", FIXED_TODAY)]


async def test_ensure_twice_is_harmless(migrated_conn: asyncpg.Connection) -> None:
    created = await ensure_partitions(migrated_conn, days_ahead=3, today=FIXED_TODAY)
    expected = {
        part(t, d)
        for t in PARTITIONED_TABLES
        for d in days(FIXED_TODAY - timedelta(days=1), FIXED_TODAY + timedelta(days=3))
    } | {month_part(t, d) for t in MONTHLY_PARTITIONED_TABLES for d in (date(2024, 6, 1), date(2024, 7, 1))}
    assert set(created) == expected
    before = {t: await partitions(migrated_conn, t) for t in PARTITIONED_TABLES}
    assert await ensure_partitions(migrated_conn, days_ahead=3, today=FIXED_TODAY) == []
    assert {t: await partitions(migrated_conn, t) for t in PARTITIONED_TABLES} == before


async def test_concurrent_ensure_creates_each_partition_once(
    migrated_conn: asyncpg.Connection, db_settings: ServiceSettings
) -> None:
    conns = [await connect(db_settings) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(ensure_partitions(c, days_ahead=20, today=FIXED_TODAY) for c in conns)
        )
    finally:
        for c in conns:
            await c.close()
    created = [name for result in results for name in result]
    # 22 days from June 29 to July 20; the monthly tables get June and July
    assert len(created) == len(set(created)) == 22 * len(PARTITIONED_TABLES) + 2 * len(MONTHLY_PARTITIONED_TABLES)


async def test_rows_in_the_default_partition_move_when_their_day_is_created(
    migrated_conn: asyncpg.Connection,
) -> None:
    day = FIXED_TODAY
    for table in PARTITIONED_TABLES:
        await insert_sample(migrated_conn, table, noon(day))
        await insert_sample(migrated_conn, table, noon(day + timedelta(days=1)))
        assert set((await located(migrated_conn, table)).values()) == {f"{table}_default"}

    created = await ensure_partitions(migrated_conn, days_ahead=0, days_behind=0, today=day)
    assert sorted(created) == sorted([part(t, day) for t in PARTITIONED_TABLES]
                                     + [month_part(t, day) for t in MONTHLY_PARTITIONED_TABLES])
    for table in PARTITIONED_TABLES:
        assert await located(migrated_conn, table) == {
            noon(day): part(table, day),
            noon(day + timedelta(days=1)): f"{table}_default",  # its day does not exist yet
        }
    # The moved row keeps its values and its primary key still guards it.
    await insert_sample(migrated_conn, "miner_metrics", noon(day))
    assert await migrated_conn.fetchval(
        "SELECT accepted FROM miner_metrics WHERE ts = $1", noon(day)
    ) == 20


async def test_retention_drops_only_old_partitions(migrated_conn: asyncpg.Connection) -> None:
    today = FIXED_TODAY
    span = days(today - timedelta(days=40), today)
    await ensure_partitions(migrated_conn, days_ahead=0, days_behind=40, today=today)
    for table in PARTITIONED_TABLES:
        for day in span:
            await insert_sample(migrated_conn, table, noon(day))
    # Rows without a day partition: one long expired, one in the future.
    ancient, future = noon(today - timedelta(days=100)), noon(today + timedelta(days=100))
    for ts in (ancient, future):
        await insert_sample(migrated_conn, "metrics", ts)
    before = {t: await partitions(migrated_conn, t) for t in PARTITIONED_TABLES}

    dropped = await apply_retention(
        migrated_conn, {"metrics": 30, "miner_metrics": 10}, today=today
    )

    expected = [part("metrics", d) for d in span if d < today - timedelta(days=30)] + [
        part("miner_metrics", d) for d in span if d < today - timedelta(days=10)
    ]
    assert sorted(dropped) == sorted(expected)
    for table, keep_days in (("metrics", 30), ("miner_metrics", 10)):
        kept = [d for d in span if d >= today - timedelta(days=keep_days)]
        assert await partitions(migrated_conn, table) == before[table] - set(expected)
        where = await located(migrated_conn, table)
        assert {ts: p for ts, p in where.items() if p != f"{table}_default"} == {
            noon(d): part(table, d) for d in kept
        }
    # Expired rows in the default partition go too; future ones stay.
    assert (await located(migrated_conn, "metrics")).get(future) == "metrics_default"
    assert ancient not in await located(migrated_conn, "metrics")
    # Tables without a retention entry are untouched.
    for table in ("performance_metrics", "pool_metrics"):
        assert await partitions(migrated_conn, table) == before[table]
        assert len(await located(migrated_conn, table)) == len(span)

    assert await apply_retention(migrated_conn, {"metrics": 30, "miner_metrics": 10}, today=today) == []


async def test_the_default_partition_is_never_dropped(migrated_conn: asyncpg.Connection) -> None:
    dropped = await apply_retention(
        migrated_conn, dict.fromkeys(PARTITIONED_TABLES, 1), today=date(2200, 1, 1)
    )
    assert dropped  # every daily partition made by migrate is older than that
    for table in PARTITIONED_TABLES:
        assert await partitions(migrated_conn, table) == {f"{table}_default"}
    # With no daily partitions left, inserts still succeed.
    await insert_sample(migrated_conn, "metrics", datetime.now(UTC))


async def test_run_retention_uses_the_settings(
    migrated_conn: asyncpg.Connection, db_settings: ServiceSettings
) -> None:
    today = utc_today()
    old = [today - timedelta(days=n) for n in (60, 50)]
    for table in PARTITIONED_TABLES:
        await migrated_conn.fetch(
            "SELECT chimera_ensure_partitions($1, $2, $3)", table, old[0], old[1]
        )
    dropped = await run_retention(db_settings)
    # Defaults: metrics / performance_metrics 30 days, miner_metrics 14, pool_metrics 90.
    expected = {
        f"{table}_p{day:%Y%m%d}"
        for table in ("metrics", "performance_metrics", "miner_metrics")
        for day in days(old[0], old[1])
    }
    assert set(dropped) == expected
    assert part("pool_metrics", old[0]) in await partitions(migrated_conn, "pool_metrics")


async def test_unmigrated_schema_gets_a_clear_error(db_conn: asyncpg.Connection) -> None:
    with pytest.raises(SchemaNotMigratedError) as info:
        await ensure_partitions(db_conn, days_ahead=1)
    assert info.value.table == PARTITIONED_TABLES[0]
    assert "chimera migrate" in str(info.value)


@pytest.mark.parametrize(
    ("retention", "table"),
    [({"metrics": 0}, "metrics"), ({"nope": 10}, "nope")],
)
async def test_invalid_retention_is_refused(
    migrated_conn: asyncpg.Connection, retention: dict[str, int], table: str
) -> None:
    with pytest.raises(InvalidRetentionError) as info:
        await apply_retention(migrated_conn, retention, today=FIXED_TODAY)
    assert info.value.table == table


async def test_daily_rollups_have_monthly_partitions_and_retention(migrated_conn: asyncpg.Connection) -> None:
    table = "miner_metrics_daily"
    first, last = date(2024, 4, 1), FIXED_TODAY  # April .. June
    await insert_sample(migrated_conn, table, noon(date(2024, 5, 17)))  # before its month exists: default
    await ensure_partitions(migrated_conn, days_ahead=0, days_behind=(last - first).days, today=last)
    assert {month_part(table, d) for d in months(first, last)} <= await partitions(migrated_conn, table)
    assert (await located(migrated_conn, table))[noon(date(2024, 5, 17))] == month_part(table, date(2024, 5, 1))
    for day in (date(2024, 4, 30), date(2024, 6, 1)):
        await insert_sample(migrated_conn, table, noon(day))
    # 40 days before June 30 is May 21: only April lies wholly before it
    dropped = await apply_retention(migrated_conn, {table: 40}, today=FIXED_TODAY)
    assert dropped == [month_part(table, date(2024, 4, 1))]
    assert set((await located(migrated_conn, table)).values()) == {
        month_part(table, date(2024, 5, 1)), month_part(table, date(2024, 6, 1))}


async def test_default_retention_of_the_rollups() -> None:
    retention = ServiceSettings().retention_days()
    assert (retention["miner_metrics"], retention["miner_metrics_hourly"], retention["miner_metrics_daily"]) == (
        14, 365, 1825)
    assert (retention["pool_metrics_hourly"], retention["pool_metrics_daily"]) == (365, 1825)
