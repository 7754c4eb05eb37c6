"""Prometheus configuration, alert and recording rules, checked by Prometheus' own tools.

`promtool` comes from `ensure_monitoring_binaries()` (installs Debian's packages
when missing, as root). No Kafka or PostgreSQL: these read files only, and the
metric-name check builds the services' telemetry on fresh registries.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from chimera.devstack.config import PROJECT_ROOT
from chimera.devstack.monitoring_bins import MonitoringBinaries, ensure_monitoring_binaries

pytestmark = pytest.mark.integration

PROMETHEUS_DIR = PROJECT_ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERT_RULES = PROMETHEUS_DIR / "alert_rules.yml"
RECORDING_RULES = PROMETHEUS_DIR / "recording_rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
RUNBOOK = PROJECT_ROOT / "deploy" / "RUNBOOK.md"
RULE_PACK = PROJECT_ROOT / "deploy" / "rules" / "default.yaml"

# Series the rules may read that no Chimera service registers: Prometheus' own `up` and
# the exporters' default names, as scrapes of Debian's node_exporter 1.5 and
# postgres_exporter 0.11 showed them (add a name here only after seeing it there).
_FOREIGN_NAMES = {
    "up",
    "node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
    "node_filesystem_avail_bytes", "node_filesystem_size_bytes",
    "pg_up", "pg_settings_max_connections", "pg_stat_activity_count",
    "pg_stat_activity_max_tx_duration", "pg_stat_database_deadlocks", "pg_database_size_bytes",
}
_FOREIGN_PREFIXES = ("pg_", "node_")
# Prefixes of the names the Chimera services own (the seed's pool_/miner_/worker_ and chimera_*).
_OWN_PREFIXES = ("pool_", "miner_", "worker_", "chimera_")


@pytest.fixture(scope="module")
def bins() -> MonitoringBinaries:
    return ensure_monitoring_binaries()


def _promtool(bins: MonitoringBinaries, *args: str | Path) -> None:
    done = subprocess.run([str(bins.promtool), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False, cwd=PROJECT_ROOT)
    assert done.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _rules(path: Path) -> Iterator[dict[str, Any]]:
    for group in _load(path)["groups"]:
        yield from group["rules"]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules(ALERT_RULES) if "alert" in rule]


# --- promtool ---------------------------------------------------------------------------


def test_config_is_valid(bins: MonitoringBinaries) -> None:
    _promtool(bins, "check", "config", CONFIG)


@pytest.mark.parametrize("rules", [ALERT_RULES, RECORDING_RULES], ids=lambda p: p.name)
def test_rule_files_are_valid(bins: MonitoringBinaries, rules: Path) -> None:
    _promtool(bins, "check", "rules", rules)


def test_rule_unit_tests_pass(bins: MonitoringBinaries) -> None:
    assert RULE_TESTS, "no promtool tests in deploy/prometheus/tests"
    _promtool(bins, "test", "rules", *RULE_TESTS)


# --- conventions the files keep -----------------------------------------------------------


def test_config_loads_both_rule_files() -> None:
    config = _load(CONFIG)
    assert sorted(config["rule_files"]) == ["alert_rules.yml", "recording_rules.yml"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"chimera-ingest", "chimera-aggregator", "chimera-alerter", "chimera-notifier",
            "postgres", "node", "prometheus"} <= jobs


def _anchors(markdown: str) -> set[str]:
    # GitHub's anchors: lower case, punctuation dropped, spaces to dashes.
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_alert_is_documented_with_a_runbook_section() -> None:
    anchors = _anchors(RUNBOOK.read_text())
    problems = []
    for rule in _alerts():
        name = rule["alert"]
        annotations = rule.get("annotations", {})
        missing = {"summary", "description", "runbook_url"} - set(annotations)
        if missing:
            problems.append(f"{name}: no {sorted(missing)}")
        if rule.get("labels", {}).get("severity") not in {"info", "warning", "critical"}:
            problems.append(f"{name}: severity must be info, warning or critical")
        url = annotations.get("runbook_url", "")
        if url != f"deploy/RUNBOOK.md#{name.lower()}":
            problems.append(f"{name}: runbook_url {url!r} is not deploy/RUNBOOK.md#{name.lower()}")
        if name.lower() not in anchors:
            problems.append(f"{name}: RUNBOOK.md has no section #{name.lower()}")
    assert not problems, "\n".join(problems)


def test_every_alert_has_a_firing_and_a_quiet_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in _load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert not names - fires, f"alerts no promtool test sees firing: {sorted(names - fires)}"
    assert not names - quiet, f"alerts no promtool test sees quiet: {sorted(names - quiet)}"
    assert not (fires | quiet) - names, f"tests of alerts that do not exist: {sorted((fires | quiet) - names)}"


# --- metric names -----------------------------------------------------------------------------


def _exposed_names(registry: CollectorRegistry) -> set[str]:
    """Every series name a scrape of `registry` can show, counters with their _total."""
    names: set[str] = set()
    for family in registry.collect():
        # A counter's or histogram's family name is never a series of its own.
        if family.type not in {"counter", "histogram"}:
            names.add(family.name)
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{part}" for part in ("bucket", "count", "sum", "created")}
    return names


def _service_metric_names() -> set[str]:
    # Imported here: the services' modules pull in FastAPI and friends, which only this test needs.
    from services.aggregator.consume.results import PipelineStats
    from services.aggregator.outputs.exporter import MetricsExporter
    from services.alerter.telemetry import AlerterTelemetry
    from services.ingest.adapters.custom_metrics import CustomMetrics
    from services.ingest.adapters.metrics_persister import _Telemetry as PersisterTelemetry
    from services.ingest.telemetry import IngestTelemetry
    from services.notifier.telemetry import NotifierTelemetry

    names: set[str] = set()
    # The exporter registers its telemetry, the seed's pool_/miner_ families and the pipeline's totals.
    exporter = MetricsExporter(db_pool=None, port=0, pipeline_stats=PipelineStats())
    names |= _exposed_names(exporter.registry)  # families come out empty, but named
    ingest = CollectorRegistry()
    IngestTelemetry(ingest)
    PersisterTelemetry(ingest)
    ingest.register(CustomMetrics(max_series=10, max_series_per_key=10).collector())
    for registry in (ingest, AlerterTelemetry().registry, NotifierTelemetry().registry):
        names |= _exposed_names(registry)
    return names


def _series_names(expr: str) -> set[str]:
    """The metric names an expression reads, roughly: identifiers outside strings that are
    not PromQL keywords, functions, label names or durations (good enough for our rules)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    without_matchers = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_groupings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "",
                               without_matchers)
    without_ranges = re.sub(r"\[[^\]]*\]", "[]", without_groupings)
    # Identifiers not called like a function (durations went with the ranges).
    return set(re.findall(r"(?<![\w:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", without_ranges))


def test_rules_read_only_metrics_that_exist() -> None:
    exposed = _service_metric_names()
    recorded = {rule["record"] for rule in _rules(RECORDING_RULES)}
    custom = set(_load(RULE_PACK)["custom_metrics"])  # team_activity, referral_signups
    problems = []
    for path in (RECORDING_RULES, ALERT_RULES):
        for rule in _rules(path):
            for name in _series_names(rule["expr"]):
                if ":" in name:
                    known = name in recorded
                elif name.startswith(_OWN_PREFIXES):
                    known = name in exposed
                elif name.startswith(_FOREIGN_PREFIXES) or name in _FOREIGN_NAMES:
                    known = name in _FOREIGN_NAMES
                elif name in custom:
                    known = True
                else:
                    continue  # a function or keyword (rate, sum, and, or...)
                if not known:
                    problems.append(f"{path.name}: {rule.get('alert') or rule.get('record')} reads {name}")
    assert not problems, "no service exports:\n" + "\n".join(problems)


def test_name_check_would_catch_a_typo() -> None:
    assert "pool_total_hashrate" in _service_metric_names()
    assert "pool_total_hashrates" not in _service_metric_names()
    assert "pool_blocks_found" not in _service_metric_names()  # only pool_blocks_found_total is scraped
    assert _series_names('sum by (pool) (rate(miner_shares_accepted_total{pool="x"}[5m])) > 0') == {
        "miner_shares_accepted_total"}
    assert _series_names("a:b:c > 0.7 * avg_over_time(pool_x[6h]) and on (pool) up offset 24h") == {
        "a:b:c", "pool_x", "and", "up", "offset"}
