"""Custom metrics on the ingest service's /metrics: types, labels, conflicts, the series cap, Kafka down."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.db.migrate import migrate_database
from shared.kafka.topics import Topic
from tests.conftest import Endpoints
from tests.integration.ingest.conftest import Api, make_settings, serve
from tests.integration.ingest.helpers import read_topics

pytestmark = pytest.mark.integration

MAX_SERIES = 4


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    # No /metrics cache: the test reads its own writes from one scrape to the next.
    return {"custom_metrics_max_series": MAX_SERIES, "metrics_cache_s": 0}


async def scrape(api: Api) -> dict[str, tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    return {f.name: (f.type, {(s.name, tuple(sorted(s.labels.items()))): s.value for s in f.samples})
            for f in text_string_to_metric_families(response.text)}


async def test_exported_with_type_and_labels_then_conflicts_then_cap(module_api: Api) -> None:
    # One test, in order: the module's exporter is shared and the cap counts every series in it.
    api = module_api
    ingest = await api.headers("ingest")

    async def post(body: dict[str, Any]) -> Any:
        return await api.client.post("/api/metrics", json=body, headers=ingest)

    for body in (
        {"name": "pool_fan_speed", "value": 1200, "labels": {"rig": "r1"}},
        {"name": "pool_fan_speed", "value": 1300, "labels": {"rig": "r1"}},
        {"name": "payouts", "type": "counter", "value": 2, "labels": {"coin": "btc"}},
        {"name": "payouts", "type": "counter", "value": 0.5, "labels": {"coin": "btc"}},
        {"name": "share_latency", "type": "histogram", "value": 0.2},
        {"name": "share_latency", "type": "histogram", "value": 3},
    ):
        response = await post(body)
        assert response.status_code == 202, response.text
    families = await scrape(api)
    assert families["pool_fan_speed"] == ("gauge", {("pool_fan_speed", (("rig", "r1"),)): 1300.0})
    assert families["payouts"] == ("counter", {("payouts_total", (("coin", "btc"),)): 2.5})
    kind, samples = families["share_latency"]
    assert kind == "histogram"
    assert samples[("share_latency_bucket", (("le", "0.25"),))] == 1
    assert samples[("share_latency_bucket", (("le", "+Inf"),))] == 2
    assert (samples[("share_latency_count", ())], samples[("share_latency_sum", ())]) == (2, 3.2)
    assert "chimera_http_request_duration_seconds" in families  # the service's own metrics are still there

    # One name, one type and one label set.
    wrong_type = await post({"name": "pool_fan_speed", "type": "counter", "value": 1, "labels": {"rig": "r1"}})
    assert wrong_type.status_code == 409
    assert "gauge" in wrong_type.json()["error"] and wrong_type.json()["details"][0]["field"] == "body.type"
    wrong_labels = await post({"name": "pool_fan_speed", "value": 1, "labels": {"host": "r1"}})
    assert wrong_labels.status_code == 409
    assert wrong_labels.json()["details"][0]["field"] == "body.labels"

    # Three series so far; the fourth fits, the fifth does not.
    assert (await post({"name": "pool_fan_speed", "value": 900, "labels": {"rig": "r2"}})).status_code == 202
    refused = await post({"name": "pool_fan_speed", "value": 1, "labels": {"rig": "r3"}})
    assert refused.status_code == 422
    assert f"limit reached ({MAX_SERIES} distinct series)" in refused.json()["error"]
    assert refused.json()["details"][0]["field"] == "body.labels"
    assert (await post({"name": "brand_new", "value": 1})).status_code == 422
    # Existing series still take samples at the cap.
    assert (await post({"name": "pool_fan_speed", "value": 1400, "labels": {"rig": "r1"}})).status_code == 202

    families = await scrape(api)
    assert families["pool_fan_speed"][1] == {
        ("pool_fan_speed", (("rig", "r1"),)): 1400.0, ("pool_fan_speed", (("rig", "r2"),)): 900.0}
    assert "brand_new" not in families
    # Counted per key and reason; one key posted everything here.
    refusals = {dict(labels)["reason"]: value
                for (_, labels), value in families["chimera_custom_metrics_refused"][1].items()}
    assert refusals == {"series_limit": 2, "conflict": 2}
    assert families["chimera_custom_metrics_series"][1][("chimera_custom_metrics_series", ())] == MAX_SERIES

    # Refused samples were written nowhere: only the 8 accepted ones are in pool.metrics.
    records = [orjson.loads(r.value) for r in await read_topics(api.settings, (Topic.METRICS,))]
    assert len(records) == 8
    assert not [r for r in records if r["name"] == "brand_new" or r["labels"].get("rig") == "r3"]


async def test_kafka_down_is_503_and_reserves_nothing(endpoints: Endpoints, topic_prefix: str, db_schema: str) -> None:
    # No broker listens on port 1; the database is there (keys), Kafka is not.
    settings = make_settings(endpoints, topic_prefix, db_schema, kafka_bootstrap_servers="127.0.0.1:1",
                             kafka_produce_timeout_s=0.3, custom_metrics_max_series=1)
    await migrate_database(settings)
    async for api in serve(settings, setup=False):
        headers = await api.headers("ingest")
        for name in ("first_series", "second_series"):
            response = await api.client.post("/api/metrics", json={"name": name, "value": 1}, headers=headers)
            # Not 422 for the second: the first one's failed write released its reservation.
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"]
            assert "Kafka" in response.json()["error"]
        for path, body in (("/api/metrics/performance", {"host": "h", "cpu_usage": 1}),
                           ("/api/metrics/miner", {"miner": "m", "reported_hashrate": 1})):
            assert (await api.client.post(path, json=body, headers=headers)).status_code == 503
        assert api.container.custom_metrics.series_count == 0
