"""A custom metric crosses a rule -> the alerter fires -> the notifier tells a webhook receiver;
the metric comes back -> the receiver gets the resolved notice.

Real HTTP (the public API with the alerter's and the notifier's routes, a loopback webhook
receiver), the real broker and database, the ingest app, the alerter and the notifier in this
event loop. The channel and the rule are made through the API, as an operator would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.alerter.config import AlerterSettings
from services.notifier.domain.messages import SIGNATURE_HEADER, webhook_signature
from tests.conftest import Endpoints
from tests.integration.alerter.conftest import running as alerting
from tests.integration.ingest.conftest import make_settings as ingest_settings
from tests.integration.ingest.conftest import serve
from tests.integration.notifier.receivers import HttpReceiver
from tests.integration.notifier.service import notifier_settings
from tests.integration.notifier.service import running as notifying
from tests.waiting import until

pytestmark = pytest.mark.e2e

RULE = {"name": "rig too hot", "metric": "rig_temperature_c", "operator": ">", "threshold": 80,
        "severity": "critical", "group_by": ["rig"]}


async def test_a_metric_over_a_rule_is_told_firing_then_resolved(
        endpoints: Endpoints, topic_prefix: str, db_schema: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_ALLOWED_NETWORKS", "127.0.0.0/8,::1")  # the API checks channel URLs too
    notifier = await notifier_settings(endpoints, topic_prefix, db_schema, tmp_path)
    monkeypatch.setenv("NOTIFIER_SECRET_KEYS", notifier.notifier_secret_keys.get_secret_value())  # type: ignore[union-attr]
    api_settings = ingest_settings(endpoints, topic_prefix, db_schema)
    alerter = AlerterSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers, kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=notifier.kafka_topic_partitions, database_url=endpoints.database_url,
        database_schema=db_schema, metrics_port=0, alerter_tick_s=0.25, alerter_rules_reload_s=0.25,
        log_level="WARNING")

    def sample(value: float) -> dict[str, Any]:
        return {"name": "rig_temperature_c", "type": "gauge", "value": value, "labels": {"rig": "r1"}}

    async with HttpReceiver() as receiver:
        async for api in serve(api_settings):
            admin, write = await api.headers("admin", "read"), await api.headers("ingest")
            assert (await api.client.post("/api/metrics", json=sample(60), headers=write)).status_code == 202

            async def metric_known() -> bool:  # the sample reaches the metrics table a moment later
                listed = await api.client.get("/api/alert-rules/metrics", headers=admin)
                return "rig_temperature_c" in listed.text

            await until(metric_known, what="the custom metric listed")
            rule = await api.client.post("/api/alert-rules", json=RULE, headers=admin)
            assert rule.status_code == 201, rule.text
            channel = {"name": "ops", "type": "webhook",
                       "config": {"url": receiver.url("/hook"), "hmac_secret": "topsecret"},
                       "group_wait": "1s", "group_interval": "1s", "matchers": {"severity": "critical"}}
            made = await api.client.post("/api/alert-channels", json=channel, headers=admin)
            assert made.status_code == 201, made.text
            assert "topsecret" not in made.text and receiver.url("/hook") not in made.text
            async with alerting(alerter), notifying(notifier):
                assert (await api.client.post("/api/metrics", json=sample(95), headers=write)).status_code == 202
                fired = (await receiver.wait_for(1, timeout_s=60))[0]
                assert fired.headers[SIGNATURE_HEADER] == webhook_signature(b"topsecret", fired.body)
                body = fired.json
                assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "ops")
                [alert] = body["alerts"]
                assert alert["labels"]["alertname"] == "rig too hot" and alert["labels"]["rig"] == "r1"
                assert "rig=r1" in alert["annotations"]["summary"]

                assert (await api.client.post("/api/metrics", json=sample(50), headers=write)).status_code == 202
                resolved = (await receiver.wait_for(2, timeout_s=60))[1].json
                assert resolved["status"] == "resolved"
                assert [a["fingerprint"] for a in resolved["alerts"]] == [alert["fingerprint"]]
                assert resolved["alerts"][0]["endsAt"] >= alert["startsAt"]

            log = await api.client.get("/api/notifications", params={"status": "sent"}, headers=admin)
            assert log.status_code == 200, log.text
            sent = log.json()["notifications"]
            assert [(n["channel_type"], n["status"], n["attempt"]) for n in sent] == [("webhook", "sent", 1)] * 2
            assert {fp for n in sent for fp in n["fingerprints"]} == {alert["fingerprint"]}
