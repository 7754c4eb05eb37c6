"""Events in through `POST /v1/events` -> the aggregator -> the alerter -> an `alerts` row and a
`chimera.alerts` record; then the condition clears and the alert resolves.

The rule: a worker's efficiency over the last 15 minutes below 0.9. Half the
shares of a past minute are rejected (firing); then enough accepted shares of
the last complete minute arrive to lift it over 0.9 (resolved). Real HTTP, broker,
database and the three services in this event loop.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pytest

from services.alerter.config import AlerterSettings
from shared.kafka.topics import Topic
from tests.conftest import Endpoints
from tests.integration.aggregator.conftest import make_settings as aggregator_settings
from tests.integration.aggregator.conftest import running as aggregating
from tests.integration.alerter.conftest import running as alerting
from tests.integration.ingest.conftest import make_settings as ingest_settings
from tests.integration.ingest.conftest import serve
from tests.integration.ingest.helpers import read_topics
from tests.waiting import until

pytestmark = pytest.mark.e2e

RULE = {"name": "rejecting worker", "metric": "worker_efficiency", "window": "15m", "operator": "<",
        "threshold": 0.9, "group_by": ["miner", "worker"], "severity": "error"}


def _shares(minute_ms: int, n: int, status: str) -> list[dict[str, Any]]:
    return [{"event_id": uuid.uuid4().hex, "type": "share", "ts": minute_ms + 1_000 + i, "pool": "main",
             "node": "n1", "miner": "alice", "worker": "rig1", "difficulty": 1000.0, "status": status}
            for i in range(n)]


def _last_complete_minute_ms() -> int:
    return int(time.time() * 1000) // 60_000 * 60_000 - 60_000


async def test_posted_events_raise_an_alert_and_clear_it(endpoints: Endpoints, topic_prefix: str,
                                                         db_schema: str) -> None:
    api_settings = ingest_settings(endpoints, topic_prefix, db_schema)
    agg = aggregator_settings(endpoints, topic_prefix, db_schema, snapshot_interval_s=0.5)
    alerter = AlerterSettings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers, kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=agg.kafka_topic_partitions, database_url=endpoints.database_url,
        database_schema=db_schema, metrics_port=0, alerter_tick_s=0.25, alerter_rules_reload_s=0.25,
        log_level="WARNING")
    # The last complete minute: inside every window, and newer than the aggregator's catching-up
    # allowance (2 min), so the alerter judges its windows at once rather than as a replay.
    minute = _last_complete_minute_ms()
    async for api in serve(api_settings):
        admin, write = await api.headers("admin"), await api.headers("ingest")
        assert (await api.client.post("/api/alert-rules", json=RULE, headers=admin)).status_code == 201
        async with aggregating(agg), alerting(alerter):
            bad = _shares(minute, 10, "accepted") + _shares(minute, 10, "rejected")
            assert (await api.client.post("/v1/events", json=bad, headers=write)).status_code == 202
            row = await until(lambda: api.container.pool.fetchrow("SELECT * FROM alerts WHERE status = 'firing'"))
            assert row["labels"]["worker"] == "rig1" and row["value"] == pytest.approx(0.5)
            # Again the last complete minute as it is now: firing can take a while on a loaded
            # machine, and shares of a minute over 2 minutes old would be judged as a replay.
            good = _shares(_last_complete_minute_ms(), 200, "accepted")
            assert (await api.client.post("/v1/events", json=good, headers=write)).status_code == 202
            done = await until(lambda: api.container.pool.fetchrow(
                "SELECT * FROM alerts WHERE status = 'resolved'"))
            assert done["id"] == row["id"] and done["end_reason"] == "condition cleared"

            async def both() -> Any:
                got = [orjson.loads(r.value) for r in await read_topics(alerter, (Topic.ALERTS,))]
                return got if len(got) == 2 else None

            records = await until(both)
    assert [(r["status"], r["labels"]["alertname"]) for r in records] == [
        ("firing", "rejecting worker"), ("resolved", "rejecting worker")]
