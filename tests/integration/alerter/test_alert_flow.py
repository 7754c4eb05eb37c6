"""Snapshot records -> the alerter -> an `alerts` row and a `chimera.alerts` record, then resolved."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.alerter.config import AlerterSettings
from shared.clock import now_ms
from shared.kafka.topics import Topic
from tests.integration.ingest.helpers import read_topics
from tests.waiting import until

from .conftest import add_rule, running, send_snapshots, worker_record

pytestmark = pytest.mark.integration


async def test_a_worker_that_goes_offline_fires_and_resolves(alerter_settings: AlerterSettings,
                                                            pool: asyncpg.Pool) -> None:
    rule = await add_rule(pool)
    async with running(alerter_settings):
        await send_snapshots(alerter_settings, worker_record(now_ms(), worker="w1", online=True),
                             worker_record(now_ms(), worker="w2", online=False))
        row = await until(lambda: pool.fetchrow("SELECT * FROM alerts WHERE status = 'firing'"))
        assert row["rule_id"] == rule.id and row["labels"]["worker"] == "w2" and row["severity"] == "critical"
        assert "worker_online" in row["annotations"]["description"]

        async def published() -> list[dict]:  # type: ignore[type-arg]
            return [orjson.loads(r.value) for r in await read_topics(alerter_settings, (Topic.ALERTS,))]

        (firing,) = await until(published)
        assert (firing["status"], firing["labels"]["worker"], firing["fingerprint"]) == (
            "firing", "w2", row["fingerprint"])

        await send_snapshots(alerter_settings, worker_record(now_ms(), worker="w2", online=True))
        await until(lambda: pool.fetchrow("SELECT * FROM alerts WHERE status = 'resolved'"))
        records = await until(lambda: _two(published))
        assert [r["status"] for r in records] == ["firing", "resolved"]
        assert records[1]["starts_at"] == records[0]["starts_at"]


async def _two(fetch):  # type: ignore[no-untyped-def]
    got = await fetch()
    return got if len(got) >= 2 else None


async def test_a_rule_added_while_running_judges_the_current_series_at_once(alerter_settings: AlerterSettings,
                                                                           pool: asyncpg.Pool) -> None:
    async with running(alerter_settings) as service:
        await send_snapshots(alerter_settings, worker_record(now_ms(), worker="w9", online=False))
        await until(lambda: _evaluated(service))  # read (no rule yet): kept as the series' latest
        await add_rule(pool)  # no new record after this: the rule meets the kept one
        row = await until(lambda: pool.fetchrow("SELECT * FROM alerts WHERE status = 'firing'"))
        assert row["labels"]["worker"] == "w9"
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{service.http.port}/metrics")).text
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"chimera_alerter_records", "chimera_alerter_evaluation_seconds", "chimera_alerter_transitions",
            "chimera_alerter_alerts", "chimera_alerter_evaluation_lag_seconds", "chimera_alerter_rules"} <= families
    assert 'chimera_alerter_transitions_total{status="firing"} 1.0' in text


async def _evaluated(service: Any) -> bool:
    value = service.telemetry.registry.get_sample_value(
        "chimera_alerter_records_total", {"topic": "chimera.snapshots", "status": "evaluated"})
    return bool(value)
