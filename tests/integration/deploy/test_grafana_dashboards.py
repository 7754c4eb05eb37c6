"""The Grafana dashboards of deploy/grafana: model, PromQL and SQL checks.

- the JSON models themselves (pure): schema, ids, layout, data sources, variables;
- metric names against what the services register, tables against the migrations;
- every PromQL query parsed by `promtool check rules` (as recording rules);
- every SQL query executed against a freshly migrated PostgreSQL schema with a
  little data in it, Grafana's macros expanded to plain SQL.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest
import yaml

from tests.integration.deploy import grafana_model as gm

ROOT: Final = gm.GRAFANA_DIR.parents[1]
DASHBOARDS: Final = gm.dashboard_files()
IDS: Final = [p.name for p in DASHBOARDS]
DATASOURCES: Final = gm.provisioned_datasources()
# Standard node_exporter series (job "node" of deploy/prometheus/prometheus.yml).
NODE_EXPORTER_METRICS: Final = frozenset({
    "node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
    "node_filesystem_avail_bytes", "node_filesystem_size_bytes",
})
_REGISTERED: Final = re.compile(
    r'(?:Counter|Gauge|Histogram|Summary|CounterMetricFamily|GaugeMetricFamily|HistogramMetricFamily)'
    r'\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
# (name, help) pairs the exporter turns into families in a loop (its performance gauges).
_NAME_HELP_PAIR: Final = re.compile(r'\(\s*"([a-z_][a-z0-9_]*)",\s*"[A-Z][^"]*"\s*\)')
_PROMQL_WORDS: Final = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan",
})


@pytest.fixture(params=DASHBOARDS, ids=IDS)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return gm.load_dashboard(request.param)


def test_both_dashboards_exist() -> None:
    assert {"pool-overview.json", "community-dashboard.json"} <= set(IDS)


# --- provisioning ------------------------------------------------------------------------------

def test_datasources_provisioned_by_uid_from_the_environment() -> None:
    document = yaml.safe_load(gm.DATASOURCES_FILE.read_text())
    by_uid = {ds["uid"]: ds for ds in document["datasources"]}
    assert DATASOURCES == {"chimera-prometheus": "prometheus", "chimera-postgres": "postgres"}
    assert by_uid["chimera-prometheus"]["url"] == "${PROMETHEUS_URL}"
    pg = by_uid["chimera-postgres"]
    # Nothing about the database is written down: it all comes from Grafana's environment.
    assert pg["url"].startswith("${") and pg["user"].startswith("${")
    assert pg["jsonData"]["database"].startswith("${")
    assert pg["secureJsonData"]["password"].startswith("${")


def test_dashboard_provider_reads_the_dashboard_folder() -> None:
    document = yaml.safe_load(gm.DASHBOARDS_PROVIDER_FILE.read_text())
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# --- the JSON models ---------------------------------------------------------------------------

def test_schema_and_identity(dashboard: dict[str, Any]) -> None:
    assert isinstance(dashboard.get("schemaVersion"), int) and dashboard["schemaVersion"] >= 36
    assert dashboard.get("uid") and dashboard.get("title")
    assert dashboard.get("id") is None  # provisioned: Grafana assigns the database id


def test_panel_ids_unique_rows_included(dashboard: dict[str, Any]) -> None:
    ids = [p.get("id") for p in gm.iter_panels(dashboard)]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_grid_positions_fit_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in gm.iter_panels(dashboard):
        grid = panel.get("gridPos")
        assert grid is not None, f"panel {panel.get('id')} has no gridPos"
        assert all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")), panel["title"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_every_panel_has_a_provisioned_datasource_and_queries(dashboard: dict[str, Any]) -> None:
    for panel in gm.data_panels(dashboard):
        title = panel.get("title")
        ds = panel.get("datasource")
        assert isinstance(ds, dict) and ds.get("uid") in DATASOURCES, f"{title}: datasource {ds}"
        kind = DATASOURCES[ds["uid"]]
        assert gm.datasource_kind(ds.get("type", "")) == kind, f"{title}: type {ds.get('type')} vs uid"
        targets = panel.get("targets") or []
        assert targets, f"{title}: no target"
        ref_ids = [t.get("refId") for t in targets]
        assert len(set(ref_ids)) == len(ref_ids), f"{title}: refIds {ref_ids}"
        for target in targets:
            target_ds = target.get("datasource", ds)
            assert target_ds.get("uid") == ds["uid"], f"{title}: a target on another data source"
            key = "expr" if kind == "prometheus" else "rawSql"
            assert isinstance(target.get(key), str) and target[key].strip(), f"{title} {target.get('refId')}: no {key}"
            if kind == "postgres":
                assert target.get("format") in ("time_series", "table"), f"{title}: format {target.get('format')}"


def test_every_variable_used_is_defined(dashboard: dict[str, Any]) -> None:
    defined = set(gm.variables(dashboard))
    for q in gm.all_queries(dashboard, values={}, datasources=DATASOURCES):
        unknown = gm.variables_used(q.raw) - defined - gm.BUILTINS
        assert not unknown, f"{q.title} {q.ref_id}: undefined {sorted(unknown)}"


def test_variables(dashboard: dict[str, Any]) -> None:
    defined = gm.variables(dashboard)
    assert defined["pool"]["type"] == "query"
    assert defined["interval"]["type"] == "interval"
    assert {o["value"] for o in defined["interval"]["options"]} >= {"1m", "5m", "1h"}
    for name, variable in defined.items():
        if variable["type"] != "query":
            continue
        ds = variable.get("datasource")
        assert isinstance(ds, dict) and ds.get("uid") in DATASOURCES, f"variable {name}: datasource {ds}"
        assert gm.variable_query(variable), f"variable {name}: no query"
        # A variable may only use variables defined before it (Grafana resolves them in order).
        earlier = set(list(defined)[: list(defined).index(name)])
        unknown = gm.variables_used(gm.variable_query(variable) or "") - earlier - gm.BUILTINS
        assert not unknown, f"variable {name} uses {sorted(unknown)}"


def test_pool_overview_variables_and_annotations() -> None:
    model = gm.load_dashboard("pool-overview.json")
    defined = gm.variables(model)
    assert gm.variable_query(defined["pool"]) == "label_values(pool_total_hashrate, pool)"
    assert {"pool", "miner", "interval"} <= set(defined)
    (blocks,) = gm.annotation_queries(model, datasources=DATASOURCES)
    assert blocks.kind == "postgres" and "FROM blocks" in blocks.raw


def test_annotations_use_provisioned_datasources(dashboard: dict[str, Any]) -> None:
    for annotation in dashboard["annotations"]["list"]:
        if not annotation.get("builtIn"):
            assert annotation["datasource"]["uid"] in DATASOURCES, annotation["name"]


# --- names: metrics the services register, tables the migrations create -------------------------

def _registered_metrics() -> set[str]:
    names: set[str] = set()
    for folder in ("services", "shared"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            names.update(_REGISTERED.findall(text))
            names.update(_NAME_HELP_PAIR.findall(text))
    exposed = set(names)
    for name in names:  # what the client library exposes for counters and histograms
        exposed.update({f"{name}_total", f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"})
    return exposed


def promql_metric_names(expr: str) -> set[str]:
    """Metric names of a PromQL expression: identifiers that are neither functions, keywords,
    label names (inside {...} or by/without/on/ignoring (...)), strings nor durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        if match.group(2) is None and match.group(1).lower() not in _PROMQL_WORDS:
            names.add(match.group(1))
    return names


def _recorded_names() -> set[str]:
    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "recording_rules.yml").read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"]}


def test_promql_metric_names_are_registered(dashboard: dict[str, Any]) -> None:
    """Every series a panel reads is one a service registers or a recording rule records."""
    known = _registered_metrics() | NODE_EXPORTER_METRICS | _recorded_names()
    for q in gm.all_queries(dashboard, datasources=DATASOURCES):
        if q.kind == "prometheus":
            unknown = promql_metric_names(q.query) - known
            assert not unknown, f"{q.title} {q.ref_id}: {sorted(unknown)} is registered by no service"


def test_the_registered_names_include_the_aggregator_seed_names() -> None:
    # The exporter's families are built with MetricFamily classes; the scan must see them.
    assert {"pool_total_hashrate", "miner_hashrate", "pool_blocks_found_total"} <= _registered_metrics()
    assert promql_metric_names('sum by (pool) (rate(a_total{x="y"}[5m])) / on(pool) b') == {"a_total", "b"}


def _migration_objects() -> tuple[set[str], set[str]]:
    tables: set[str] = set()
    functions: set[str] = set()
    for path in sorted((ROOT / "shared" / "db" / "migrations").glob("*.sql")):
        text = path.read_text()
        tables.update(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", text))
        functions.update(re.findall(r"CREATE (?:OR REPLACE )?FUNCTION (\w+)", text))
    return tables, functions


def test_sql_reads_tables_the_migrations_create(dashboard: dict[str, Any]) -> None:
    tables, functions = _migration_objects()
    for q in gm.all_queries(dashboard, datasources=DATASOURCES):
        if q.kind != "postgres":
            continue
        ctes = set(re.findall(r"(\w+) AS \(", q.query))
        for name, call in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)\s*(\()?", q.query, re.IGNORECASE):
            if name.lower() in ("lateral", "interval") or name in ctes:
                continue
            known = functions if call else tables
            assert name in known, f"{q.title} {q.ref_id}: {name} is no {'function' if call else 'table'}"


# --- PromQL through promtool ---------------------------------------------------------------------

def _promtool() -> str | None:
    try:
        from chimera.devstack.monitoring_bins import find_monitoring_binaries
    except ImportError:  # the helper module is optional: PATH and /usr/bin do as well
        found: dict[str, Path] = {}
    else:
        found, _ = find_monitoring_binaries()
    if "promtool" in found:
        return str(found["promtool"])
    return shutil.which("promtool") or (str(Path("/usr/bin/promtool")) if Path("/usr/bin/promtool").exists() else None)


def test_promql_parses_with_promtool(tmp_path: Path) -> None:
    promtool = _promtool()
    if promtool is None:
        pytest.skip("promtool not found: apt-get install -y --no-install-recommends prometheus")
    rules, where = [], []
    for path in DASHBOARDS:
        model = gm.load_dashboard(path)
        for q in gm.all_queries(model, datasources=DATASOURCES):
            if q.kind == "prometheus":
                assert "$" not in q.query, f"{path.name} {q.title}: unsubstituted {q.query}"
                rules.append({"record": f"grafana:check_{len(rules)}", "expr": q.query})
                where.append(f"{path.name} / {q.title} / {q.ref_id}")
    assert rules
    file = tmp_path / "grafana_queries.rules.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "grafana-dashboards", "rules": rules}]}, sort_keys=False))
    result = subprocess.run([promtool, "check", "rules", str(file)], capture_output=True, text=True, timeout=60)
    legend = "\n".join(f"grafana:check_{i}: {w}" for i, w in enumerate(where))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{legend}"
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


# --- SQL against PostgreSQL -----------------------------------------------------------------------

def test_macro_expansion() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    sql = gm.expand_sql_macros("SELECT $__timeGroupAlias(ts, 5m), 1 WHERE $__timeFilter(ts) AND $__timeTo() > ts",
                               start, end)
    assert sql == ("SELECT floor(extract(epoch from ts)/300)*300 AS \"time\", 1 WHERE ts BETWEEN "
                   "'2026-01-01T00:00:00Z' AND '2026-01-02T00:00:00Z' AND '2026-01-02T00:00:00Z' > ts")
    assert gm.duration_s("1d") == 86400


_SEED_SQL: Final = """
INSERT INTO pool_metrics (pool, ts, accepted, rejected, stale, difficulty_accepted, active_miners, active_workers)
SELECT 'main', date_trunc('minute', now()) - m * interval '1 minute', 100, 2, 1, 5000, 3, 7
FROM generate_series(1, 180) m;
INSERT INTO blocks (pool, height, hash, miner, network_difficulty, status, effort, found_at) VALUES
    ('main', 100, 'h100', 'miner-1', 1e12, 'confirmed', NULL, now() - interval '150 minutes'),
    ('main', 101, 'h101', 'miner-2', 1.1e12, 'candidate', 0.8, now() - interval '30 minutes');
INSERT INTO miner_metrics_hourly (pool, miner, ts, accepted, minutes, last_share_at)
SELECT 'main', 'miner-' || i, date_trunc('hour', now()) - h * interval '1 hour', 50, 60, now()
FROM generate_series(1, 3) i, generate_series(0, 47, 6) h WHERE h <= 48 - i * 12;  -- first seen 36/24/12 h ago
INSERT INTO worker_status (pool, miner, worker, offline_after, source_partition)
VALUES ('main', 'miner-1', 'rig1', now() + interval '5 minutes', 0);
INSERT INTO metrics (name, value, labels, ts)
SELECT n.name, 3, n.labels::jsonb, now() - m * interval '1 minute'
FROM generate_series(1, 120) m, (VALUES
    ('team_activity', '{"team": "alpha"}'), ('team_activity', '{"team": "beta"}'),
    ('referral_signups', '{}'), ('competition_participants', '{"competition": "weekly-hashrace"}'),
    ('social_shares', '{"platform": "discord"}'), ('social_shares', '{"platform": "x"}')) n(name, labels);
"""


@pytest.fixture
async def grafana_db() -> AsyncIterator[asyncpg.Connection]:
    """A connection to a fresh, migrated schema with a few hours of data, on $DATABASE_URL only:
    this test must not start a stack of its own."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.skip("DATABASE_URL is not set (source .chimera/stack.env)")
    from shared.db import connect, migrate_database
    from shared.settings import ServiceSettings

    schema = f"t_grafana_{uuid.uuid4().hex[:10]}"
    settings = ServiceSettings(database_url=url, database_schema=schema)
    await migrate_database(settings)
    conn = await connect(settings)
    try:
        await conn.execute(_SEED_SQL)
        yield conn
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


@pytest.mark.integration
async def test_every_sql_query_runs_on_the_migrated_schema(grafana_db: asyncpg.Connection) -> None:
    end = datetime.now(UTC)
    start = end - timedelta(days=2)
    failures, returned = [], 0
    for path in DASHBOARDS:
        model = gm.load_dashboard(path)
        for q in gm.all_queries(model, datasources=DATASOURCES):
            if q.kind != "postgres":
                continue
            sql = gm.expand_sql_macros(q.query, start, end)
            label = f"{path.name} / {q.title} / {q.ref_id}"
            if "$" in sql.replace("$$", ""):
                failures.append(f"{label}: unexpanded {sql}")
                continue
            try:
                rows = await grafana_db.fetch(sql)
            except asyncpg.PostgresError as exc:
                failures.append(f"{label}: {exc!r}\n{sql}")
                continue
            returned += bool(rows)
            if rows and q.format == "time_series":
                columns = list(rows[0].keys())
                if "time" not in columns:
                    failures.append(f"{label}: a time series without a time column: {columns}")
            if rows and q.title.startswith("annotation"):
                if not {"time", "text"} <= set(rows[0].keys()):
                    failures.append(f"{label}: an annotation needs time and text columns")
    assert not failures, "\n\n".join(failures)
    assert returned >= 25  # the seed data reaches (nearly) every query, not just empty results
