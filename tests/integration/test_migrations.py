"""The migration runner and the schema it builds, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import asyncpg
import pytest

from shared.db import (
    ChecksumMismatchError,
    MigrationFailedError,
    MigrationFileError,
    OutOfOrderMigrationError,
    connect,
    create_pool,
    migrate,
    migrate_database,
)
from shared.db.migrate import LOCK_NAMESPACE, MIGRATIONS_DIR, load_migrations
from shared.settings import ServiceSettings
from tests.conftest import Endpoints, unique_name

pytestmark = pytest.mark.integration

ALL_NAMES = [m.name for m in load_migrations()]

TABLES = {
    "schema_migrations",
    "metrics",
    "performance_metrics",
    "miner_metrics",
    "pool_metrics",
    "alerts",
    "alert_rules",
    "dashboards",
    "alert_channels",
    "notifications",
    "blocks",
    "api_keys",
    "silences",
    "aggregator_offsets",
    "aggregator_event_ids",
    "worker_status",
    "miner_metrics_hourly",
    "miner_metrics_daily",
    "pool_metrics_hourly",
    "pool_metrics_daily",
    "alert_events",
    "alert_groups",
    "notification_deliveries",
    "notifier_alerts",
    "console_sessions",
}
TIME_SERIES = {
    "metrics", "performance_metrics", "miner_metrics", "pool_metrics",
    "miner_metrics_hourly", "miner_metrics_daily", "pool_metrics_hourly", "pool_metrics_daily",
}
INDEXES = {
    "metrics_name_ts_idx",
    "metrics_type_ts_idx",
    "performance_metrics_host_ts_idx",
    "performance_metrics_service_ts_idx",
    "miner_metrics_pkey",
    "miner_metrics_miner_ts_idx",
    "pool_metrics_pkey",
    "alerts_status_idx",
    "alerts_severity_idx",
    "alerts_open_fingerprint_key",
    "alert_rules_name_key",
    "alert_channels_name_key",
    "dashboards_owner_idx",
    "dashboards_is_public_idx",
    "blocks_hash_key",
    "api_keys_key_hash_key",
}
FUNCTIONS = {"chimera_ensure_partitions", "chimera_drop_partitions_before", "chimera_ensure_month_partitions",
             "chimera_ensure_range_partitions"}


def copy_migrations(tmp_path: Path) -> Path:
    """A private copy of the real migrations that a test may tamper with."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


async def test_applies_every_file_from_empty(db_conn: asyncpg.Connection, db_schema: str) -> None:
    assert len(ALL_NAMES) >= 4
    assert await migrate(db_conn) == ALL_NAMES

    rows = await db_conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY 1")
    assert [r["name"] for r in rows] == ALL_NAMES
    assert [r["checksum"] for r in rows] == [m.checksum for m in load_migrations()]

    relkinds = dict(
        await db_conn.fetch(
            """SELECT c.relname, c.relkind::text FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition""",
            db_schema,
        )
    )
    assert set(relkinds) == TABLES
    assert {name for name, kind in relkinds.items() if kind == "p"} == TIME_SERIES

    indexes = {
        r["indexname"]
        for r in await db_conn.fetch("SELECT indexname FROM pg_indexes WHERE schemaname = $1", db_schema)
    }
    assert INDEXES <= indexes

    functions = {
        r["proname"]
        for r in await db_conn.fetch(
            "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = $1",
            db_schema,
        )
    }
    assert FUNCTIONS <= functions

    defaults = await db_conn.fetch(
        """SELECT parent.relname FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class parent ON parent.oid = i.inhparent
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'""",
        db_schema,
    )
    assert {r["relname"] for r in defaults} == TIME_SERIES


async def test_second_run_is_a_no_op(db_conn: asyncpg.Connection) -> None:
    await migrate(db_conn)
    before = await db_conn.fetch("SELECT * FROM schema_migrations ORDER BY version")
    assert await migrate(db_conn) == []
    assert await db_conn.fetch("SELECT * FROM schema_migrations ORDER BY version") == before


async def test_enum_checks_reject_unknown_values(migrated_conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated_conn.execute(
            "INSERT INTO metrics (name, value, type, ts) VALUES ('x', 1, 'summary', now())"
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated_conn.execute(
            "INSERT INTO alert_rules (name, metric, operator, threshold) VALUES ('r', 'm', '=>', 1)"
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await migrated_conn.execute(
            "INSERT INTO alert_channels (name, type) VALUES ('c', 'carrier-pigeon')"
        )


async def test_one_open_alert_per_fingerprint(migrated_conn: asyncpg.Connection) -> None:
    insert = "INSERT INTO alerts (name, severity, fingerprint) VALUES ('HashrateDrop', 'warning', 'fp1')"
    await migrated_conn.execute(insert)
    with pytest.raises(asyncpg.UniqueViolationError):
        await migrated_conn.execute(insert)
    await migrated_conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = now() WHERE fingerprint = 'fp1'"
    )
    await migrated_conn.execute(insert)  # a resolved alert no longer blocks a new one


async def test_jsonb_round_trips_as_python_objects(db_settings: ServiceSettings) -> None:
    await migrate_database(db_settings)
    pool = await create_pool(db_settings)
    try:
        config = {"panels": [{"metric": "pool_hashrate", "window": "1h"}], "theme": "dark"}
        dashboard_id = await pool.fetchval(
            "INSERT INTO dashboards (name, owner, config) VALUES ('Pool', 'ops', $1) RETURNING id",
            config,
        )
        row = await pool.fetchrow("SELECT config, updated_at FROM dashboards WHERE id = $1", dashboard_id)
        assert row["config"] == config
        await asyncio.sleep(0.01)
        await pool.execute("UPDATE dashboards SET name = 'Pool 2' WHERE id = $1", dashboard_id)
        touched = await pool.fetchval("SELECT updated_at FROM dashboards WHERE id = $1", dashboard_id)
        assert touched > row["updated_at"]  # the trigger maintains updated_at
    finally:
        await pool.close()


async def test_tampered_applied_file_is_detected(db_conn: asyncpg.Connection, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path)
    await migrate(db_conn, directory=directory)
    target = sorted(directory.glob("0002_*.sql"))[0]
    target.write_text(target.read_text() + "\n-- an innocent-looking edit\n")

    with pytest.raises(ChecksumMismatchError) as info:
        await migrate(db_conn, directory=directory)
    assert info.value.version == 2
    assert info.value.name == target.stem
    assert info.value.recorded != info.value.actual
    assert target.stem in str(info.value)


async def test_line_endings_do_not_count_as_tampering(db_conn: asyncpg.Connection, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path)
    await migrate(db_conn, directory=directory)
    for path in directory.glob("*.sql"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert await migrate(db_conn, directory=directory) == []


async def test_new_file_is_applied_alone(db_conn: asyncpg.Connection, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path)
    await migrate(db_conn, directory=directory)
    (directory / "0100_extra.sql").write_text("CREATE TABLE extra (id int PRIMARY KEY);")
    assert await migrate(db_conn, directory=directory) == ["0100_extra"]
    assert await db_conn.fetchval("SELECT count(*) FROM extra") == 0


async def test_failing_file_rolls_back_and_releases_the_lock(
    db_conn: asyncpg.Connection, db_schema: str, tmp_path: Path
) -> None:
    directory = copy_migrations(tmp_path)
    await migrate(db_conn, directory=directory)
    (directory / "0100_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_column FROM half_done;"
    )
    with pytest.raises(MigrationFailedError) as info:
        await migrate(db_conn, directory=directory)
    assert (info.value.version, info.value.name) == (100, "0100_broken")
    assert isinstance(info.value.cause, asyncpg.UndefinedColumnError)
    assert await db_conn.fetchval("SELECT to_regclass('half_done')") is None
    assert await db_conn.fetchval("SELECT max(version) FROM schema_migrations") < 100
    assert await _advisory_locks(db_conn, db_schema, granted=True) == 0


async def test_out_of_order_file_is_refused(db_conn: asyncpg.Connection, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path)
    (directory / "0100_later.sql").write_text("SELECT 1;")
    await migrate(db_conn, directory=directory)
    (directory / "0050_forgotten.sql").write_text("SELECT 1;")
    with pytest.raises(OutOfOrderMigrationError) as info:
        await migrate(db_conn, directory=directory)
    assert (info.value.version, info.value.latest_applied) == (50, 100)


async def test_badly_named_file_is_refused(db_conn: asyncpg.Connection, tmp_path: Path) -> None:
    directory = copy_migrations(tmp_path)
    (directory / "5_oops.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationFileError) as info:
        await migrate(db_conn, directory=directory)
    assert info.value.path.name == "5_oops.sql"
    assert await db_conn.fetchval("SELECT to_regclass('schema_migrations')") is None


async def test_lock_is_per_schema(db_conn: asyncpg.Connection, endpoints: Endpoints) -> None:
    other = await asyncpg.connect(endpoints.database_url)
    try:
        await other.execute("SELECT pg_advisory_lock($1, hashtext($2))", LOCK_NAMESPACE, "some_other_schema")
        assert await asyncio.wait_for(migrate(db_conn), timeout=30) == ALL_NAMES
    finally:
        await other.close()


async def test_migrate_database_creates_a_missing_schema(endpoints: Endpoints) -> None:
    schema = unique_name("t_")
    settings = ServiceSettings(database_url=endpoints.database_url, database_schema=schema)
    try:
        assert await migrate_database(settings) == ALL_NAMES
        conn = await connect(settings)
        try:
            assert await conn.fetchval("SELECT current_schema()") == schema
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(ALL_NAMES)
        finally:
            await conn.close()
    finally:
        admin = await asyncpg.connect(endpoints.database_url)
        try:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await admin.close()


async def _advisory_locks(conn: asyncpg.Connection, schema: str, *, granted: bool) -> int:
    count: int = await conn.fetchval(
        """SELECT count(*) FROM pg_locks
           WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database
                                                       WHERE datname = current_database())
             AND classid = $1::bigint::oid AND objid = (hashtext($2)::bigint & 4294967295)::oid
             AND objsubid = 2 AND granted = $3""",
        LOCK_NAMESPACE,
        schema,
        granted,
    )
    return count


MIGRATE_SCRIPT = """
import asyncio, json
from shared.db.migrate import migrate_database
from shared.settings import ServiceSettings
print(json.dumps(asyncio.run(migrate_database(ServiceSettings()))))
"""


async def test_two_processes_migrating_at_once(
    endpoints: Endpoints, db_schema: str, db_conn: asyncpg.Connection
) -> None:
    env = {**os.environ, "DATABASE_URL": endpoints.database_url, "DATABASE_SCHEMA": db_schema}
    # Hold the runners' lock ourselves until both are queued on it, so the
    # race is real rather than depending on process start-up timing.
    await db_conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", LOCK_NAMESPACE, db_schema)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            MIGRATE_SCRIPT,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        async with asyncio.timeout(60):
            while await _advisory_locks(db_conn, db_schema, granted=False) < 2:
                assert all(p.returncode is None for p in procs), "a runner exited early"
                await asyncio.sleep(0.05)
        await db_conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", LOCK_NAMESPACE, db_schema)
        async with asyncio.timeout(60):
            outputs = [await p.communicate() for p in procs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()

    results = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert sorted(results, key=len) == [[], ALL_NAMES]
    rows = await db_conn.fetch("SELECT name FROM schema_migrations ORDER BY version")
    assert [r["name"] for r in rows] == ALL_NAMES
