"""The default rule pack (deploy/rules/default.yaml) through `chimera rules load` into `alert_rules`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from chimera.devstack.config import PROJECT_ROOT
from chimera.rules import load_pack, read_pack
from services.alerter.adapters.rule_store import RuleStore
from services.alerter.config import AlerterSettings
from services.alerter.domain.catalogue import custom_spec, spec_of
from services.alerter.domain.rules import check_rule

pytestmark = pytest.mark.integration

DEFAULT_PACK = PROJECT_ROOT / "deploy" / "rules" / "default.yaml"


def default_data() -> dict[str, Any]:
    data = read_pack(DEFAULT_PACK)
    assert isinstance(data, dict)
    return data


def names(data: dict[str, Any]) -> list[str]:
    return [rule["name"] for rule in data["rules"]]


async def table(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    # Every column, updated_at included: an UPDATE that changes nothing still moves it.
    return [dict(row) for row in await pool.fetch("SELECT * FROM alert_rules ORDER BY id")]


def chimera(settings: AlerterSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "DATABASE_SCHEMA": settings.database_schema,
           "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix}
    return subprocess.run([sys.executable, "-m", "chimera.cli", *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


async def test_the_default_pack_loads_and_loading_it_again_changes_nothing(pool: asyncpg.Pool) -> None:
    data = default_data()
    first = await load_pack(pool, data)
    assert first.refusals == []
    assert [(name, outcome) for name, outcome, _ in first.outcomes] == [(n, "created") for n in names(data)]
    before = await table(pool)
    assert len(before) == len(data["rules"]) == 11

    second = await load_pack(pool, data)
    assert second.refusals == []
    assert {outcome for _, outcome, _ in second.outcomes} == {"unchanged"}
    assert second.summary() == "11 rules: 0 created, 0 updated, 11 unchanged"
    assert await table(pool) == before


async def test_stored_rules_are_the_packs_and_pass_check_rule(pool: asyncpg.Pool) -> None:
    await load_pack(pool, default_data())
    rules = {rule.name: rule for rule in await RuleStore(pool).all()}
    for rule in rules.values():
        assert check_rule(rule, spec_of(rule.metric) or custom_spec(rule.metric)) == [], rule.name
        assert rule.description and rule.enabled
    offline = rules["worker offline"]
    assert (offline.metric, offline.operator, offline.threshold, offline.duration_ms, offline.group_by) == (
        "worker_online", "==", 0.0, 300_000, ("pool", "miner", "worker"))
    drop = rules["miner hashrate drop"]
    assert (drop.window, drop.relative_to, drop.operator, drop.threshold, drop.confidence, drop.group_by) == (
        "1h", "24h", "<", 0.7, 0.95, ("pool", "miner"))
    pool_drop = rules["pool hashrate drop"]
    assert (pool_drop.metric, pool_drop.severity, pool_drop.threshold) == ("pool_total_hashrate", "critical", 0.7)
    assert rules["no block for too long"].duration_ms == 30 * 60_000
    assert rules["disk usage high"].group_by == ("host",)
    assert rules["team activity drop"].metric == "team_activity"


async def test_an_edited_copy_updates_exactly_the_edited_rule(pool: asyncpg.Pool, tmp_path: Path) -> None:
    data = default_data()
    await load_pack(pool, data)
    before = {row["name"]: row for row in await table(pool)}

    data["rules"][names(data).index("cpu usage high")]["threshold"] = 95
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    report = await load_pack(pool, read_pack(edited))

    assert report.refusals == []
    assert [(n, o, c) for n, o, c in report.outcomes if o != "unchanged"] == [
        ("cpu usage high", "updated", ("threshold",))]
    after = {row["name"]: row for row in await table(pool)}
    assert after["cpu usage high"]["threshold"] == 95.0
    assert after["cpu usage high"]["id"] == before["cpu usage high"]["id"]
    assert {name: row for name, row in after.items() if name != "cpu usage high"} == {
        name: row for name, row in before.items() if name != "cpu usage high"}


async def test_a_rule_disabled_through_the_api_stays_disabled_on_reload(pool: asyncpg.Pool) -> None:
    await load_pack(pool, default_data())
    store = RuleStore(pool)
    rule = await store.by_name("referral signups drop")
    assert rule is not None
    await store.update(rule.with_changes(enabled=False))

    report = await load_pack(pool, default_data())
    assert {outcome for _, outcome, _ in report.outcomes} == {"unchanged"}
    reloaded = await store.by_name("referral signups drop")
    assert reloaded is not None and reloaded.enabled is False


async def test_a_pack_with_a_bad_rule_loads_nothing_and_names_rule_and_field(pool: asyncpg.Pool) -> None:
    data = default_data()
    data["rules"].append({"name": "shares vanish", "metric": "pool_share_vanishing", "operator": "=>",
                          "threshold": 1, "duration": "5m"})
    data["rules"].append({"name": "cpu hot", "metric": "cpu_usage", "operator": ">", "threshold": 90,
                          "window": "1h", "duration": "5 minutes"})
    report = await load_pack(pool, data)

    assert report.outcomes == []
    assert await table(pool) == []
    assert {(r.rule, r.field) for r in report.refusals} == {
        ("shares vanish", "metric"), ("shares vanish", "operator"), ("cpu hot", "window"), ("cpu hot", "duration")}


async def test_an_undeclared_custom_metric_is_refused(pool: asyncpg.Pool) -> None:
    data = default_data()
    data["custom_metrics"] = ["team_activity"]
    report = await load_pack(pool, data)
    assert [(r.rule, r.field) for r in report.refusals] == [("referral signups drop", "metric")]
    assert await table(pool) == []


async def test_the_cli_loads_lists_and_refuses(alerter_settings: AlerterSettings, pool: asyncpg.Pool,
                                              tmp_path: Path) -> None:
    first = await asyncio.to_thread(chimera, alerter_settings, "rules", "load", str(DEFAULT_PACK))
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "created   worker offline"
    assert lines[-1] == "11 rules: 11 created, 0 updated, 0 unchanged"

    again = await asyncio.to_thread(chimera, alerter_settings, "rules", "load", str(DEFAULT_PACK))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "11 rules: 0 created, 0 updated, 11 unchanged"

    listed = await asyncio.to_thread(chimera, alerter_settings, "rules", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("pool hashrate drop "))
    assert row.split()[-4:] == ["pool_total_hashrate", "<", "0.7", "enabled"]

    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"name": "oops", "metric": "no_such_metric", "operator": ">", "threshold": 1}]}')
    refused = await asyncio.to_thread(chimera, alerter_settings, "rules", "load", str(bad))
    assert refused.returncode == 2
    assert "oops: metric: unknown metric 'no_such_metric'" in refused.stderr
    assert "nothing loaded" in refused.stderr
    assert len(await table(pool)) == 11


async def test_a_rule_created_meanwhile_through_the_api_is_compared_not_duplicated(
        pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    data = default_data()
    await load_pack(pool, data)
    original = RuleStore.by_name
    missed: list[str] = []

    async def late_by_name(self: RuleStore, name: str) -> Any:
        # The first look-up misses, as if the API created the rule just after it.
        if name not in missed:
            missed.append(name)
            return None
        return await original(self, name)

    monkeypatch.setattr(RuleStore, "by_name", late_by_name)
    report = await load_pack(pool, data)
    assert report.refusals == []
    assert {outcome for _, outcome, _ in report.outcomes} == {"unchanged"}
    assert len(await table(pool)) == 11
