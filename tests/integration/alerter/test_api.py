"""The rules and alerts API over real HTTP, mounted on the public app through the plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.alerter.config import AlerterSettings
from services.ingest.config import IngestSettings
from shared.clock import now_ms
from tests.conftest import Endpoints
from tests.integration.ingest.conftest import Api, make_settings, serve
from tests.waiting import until

from .conftest import running, send_snapshots, worker_record

pytestmark = pytest.mark.integration

RULE: dict[str, Any] = {"name": "slow workers", "metric": "worker_hashrate", "operator": "<", "threshold": 1e12,
                        "window": "1h", "duration": "5m", "severity": "warning", "group_by": ["miner", "worker"],
                        "confidence": 0.95, "labels": {"pool": "main"}}


@pytest.fixture
async def api(endpoints: Endpoints, topic_prefix: str, db_schema: str) -> AsyncIterator[Api]:
    settings: IngestSettings = make_settings(endpoints, topic_prefix, db_schema)
    async for running_api in serve(settings):
        yield running_api


async def test_rules_are_created_read_replaced_and_deleted(api: Api) -> None:
    admin, read = await api.headers("admin", "read"), await api.headers("read")
    created = await api.client.post("/api/alert-rules", json=RULE, headers=admin)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert {k: rule[k] for k in RULE} == RULE | {"duration": "5m"}
    assert rule["enabled"] is True and rule["keep_firing_for"] == "0s"
    listed = (await api.client.get("/api/alert-rules", headers=read)).json()["rules"]
    assert [r["id"] for r in listed] == [rule["id"]]
    again = await api.client.post("/api/alert-rules", json=RULE, headers=admin)
    assert again.status_code == 409 and again.json()["details"][0]["field"] == "body.name"
    replaced = await api.client.put(f"/api/alert-rules/{rule['id']}", json=RULE | {"threshold": 5e11},
                                    headers=admin)
    assert replaced.status_code == 200 and replaced.json()["threshold"] == 5e11
    assert (await api.client.get(f"/api/alert-rules/{rule['id']}", headers=read)).json()["threshold"] == 5e11
    assert (await api.client.delete(f"/api/alert-rules/{rule['id']}", headers=admin)).status_code == 204
    assert (await api.client.get(f"/api/alert-rules/{rule['id']}", headers=read)).status_code == 404
    assert (await api.client.delete(f"/api/alert-rules/{rule['id']}", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [({"metric": "no_such_metric"}, "body.metric"), ({"operator": "=>"}, "body.operator"),
     ({"severity": "fatal"}, "body.severity"), ({"duration": "5 minutes"}, "body.duration"),
     ({"window": "2h"}, "body.window"), ({"labels": {"bad-name": "x"}}, "body.labels.bad-name"),
     ({"group_by": ["rack"]}, "body.group_by"), ({"confidence": 0.5}, "body.confidence"),
     ({"keep_firing_for": "forever"}, "body.keep_firing_for"), ({"threshold": "high"}, "body.threshold")],
)
async def test_a_rule_that_cannot_be_evaluated_is_a_422_naming_the_field(
    api: Api, change: dict[str, Any], field: str,
) -> None:
    answer = await api.client.post("/api/alert-rules", json=RULE | change, headers=await api.headers("admin"))
    assert answer.status_code == 422, answer.text
    assert field in [d["field"] for d in answer.json()["details"]]


async def test_scopes_guard_the_rules(api: Api) -> None:
    assert (await api.client.get("/api/alert-rules")).status_code == 401
    read = await api.headers("read")
    assert (await api.client.post("/api/alert-rules", json=RULE, headers=read)).status_code == 403
    assert (await api.client.get("/api/alert-rules", headers=await api.headers("ingest"))).status_code == 403


async def test_the_metric_catalogue_names_labels_units_and_windows(api: Api) -> None:
    catalogue = (await api.client.get("/api/alert-rules/metrics", headers=await api.headers("read"))).json()
    by_name = {m["name"]: m for m in catalogue["metrics"]}
    assert by_name["worker_hashrate"]["labels"] == ["pool", "miner", "worker"]
    assert by_name["worker_hashrate"]["unit"] == "H/s" and by_name["worker_hashrate"]["confidence"] is True
    assert by_name["worker_hashrate"]["windows"] == ["1m", "5m", "15m", "1h", "24h"]
    assert by_name["cpu_usage"]["entity"] == "performance" and by_name["pool_luck"]["labels"] == ["pool", "blocks"]
    assert {"worker_online", "worker_seconds_since_last_share", "pool_round_effort", "pool_active_miners",
            "miner_efficiency", "pool_shares_per_second"} <= set(by_name)


async def test_alerts_are_raised_listed_and_resolved_by_hand(api: Api) -> None:
    admin, read = await api.headers("admin"), await api.headers("read")
    body = {"name": "Maintenance", "severity": "info", "labels": {"miner": "m7"}, "description": "rig room"}
    raised = await api.client.post("/api/alerts", json=body, headers=admin)
    assert raised.status_code == 201, raised.text
    alert = raised.json()
    assert alert["status"] == "firing" and alert["annotations"]["description"] == "rig room"
    same = await api.client.post("/api/alerts", json=body, headers=admin)
    assert same.status_code == 200 and same.json()["id"] == alert["id"]
    found = (await api.client.get("/api/alerts?status=firing&miner=m7", headers=read)).json()["alerts"]
    assert [a["id"] for a in found] == [alert["id"]]
    assert (await api.client.get("/api/alerts?miner=m8", headers=read)).json()["alerts"] == []
    resolved = await api.client.put(f"/api/alerts/{alert['id']}/resolve", headers=admin)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert resolved.json()["end_reason"] == "resolved by hand"
    assert (await api.client.get(f"/api/alerts/{alert['id']}", headers=read)).json()["status"] == "resolved"
    assert (await api.client.put("/api/alerts/999999/resolve", headers=admin)).status_code == 404
    events = await api.container.pool.fetch("SELECT status FROM alert_events ORDER BY id")
    assert [e["status"] for e in events] == ["firing", "resolved"]  # for the relay to publish
    bad = await api.client.post("/api/alerts", json=body | {"severity": "fatal"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "body.severity"


async def test_evaluate_shows_each_rule_with_its_groups_as_the_alerter_judged_them(
    api: Api, endpoints: Endpoints,
) -> None:
    settings = api.container.settings
    alerter = AlerterSettings(**{**{k: getattr(settings, k) for k in (
        "kafka_bootstrap_servers", "kafka_topic_prefix", "kafka_topic_partitions", "database_url",
        "database_schema")}, "metrics_port": 0, "alerter_tick_s": 0.25, "alerter_rules_reload_s": 0.25,
        "log_level": "WARNING"})
    admin = await api.headers("admin")
    offline = {"name": "offline", "metric": "worker_online", "operator": "==", "threshold": 0,
               "group_by": ["worker"], "severity": "critical"}
    assert (await api.client.post("/api/alert-rules", json=offline, headers=admin)).status_code == 201
    async with running(alerter):
        await send_snapshots(alerter, worker_record(now_ms(), worker="w1", online=False),
                             worker_record(now_ms(), worker="w2", online=True))

        async def evaluated() -> Any:
            answer = (await api.client.post("/api/alert-rules/evaluate", headers=admin)).json()
            groups = answer["rules"][0]["alerts"]
            return answer if len(groups) == 2 else None

        answer = await until(evaluated)
    states = {g["labels"]["worker"]: (g["state"], g["value"]) for g in answer["rules"][0]["alerts"]}
    assert states == {"w1": ("firing", 0.0), "w2": ("inactive", 1.0)}
