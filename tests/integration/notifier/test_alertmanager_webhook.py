"""Alertmanager's webhook in, over real HTTP: records on the real chimera.alerts topic, read back by a real consumer."""

from __future__ import annotations

import copy
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from shared.kafka.topics import Topic
from tests.conftest import Endpoints
from tests.integration.ingest.helpers import read_topics

from .conftest import NotifierApi, notifier_api

pytestmark = pytest.mark.integration

PATH = "/api/alertmanager/webhook"

# What Alertmanager 0.27 posts to a webhook receiver (version 4).
PAYLOAD: dict[str, Any] = {
    "receiver": "chimera",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "PoolNodeDown", "instance": "pool-node-1:9100", "job": "node",
                       "severity": "critical", "miner": "bc1qminer"},
            "annotations": {"summary": "pool-node-1 is down", "description": "no scrape for 5 minutes"},
            "startsAt": "2024-05-01T12:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0",
            "fingerprint": "7be4a3ab1c7c2f5d",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "StratumLatencyHigh", "instance": "stratum-2", "severity": "warning"},
            "annotations": {"summary": "stratum-2 answers slowly"},
            "startsAt": "2024-05-01T11:00:00Z",
            "endsAt": "2024-05-01T11:45:30.5Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=stratum_latency",
            "fingerprint": "e3b0c44298fc1c14",
        },
    ],
    "groupLabels": {"alertname": "PoolNodeDown"},
    "commonLabels": {"job": "node"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}/{severity=~"critical|warning"}:{alertname="PoolNodeDown"}',
    "truncatedAlerts": 0,
}


@pytest.fixture
async def api(endpoints: Endpoints, topic_prefix: str, module_schema: str,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NotifierApi]:
    """A server of the test's own, for its own topics (the tests read chimera.alerts back, or fill it), on the
    module's migrated schema (the tests write API keys there, nothing else)."""
    async with notifier_api(endpoints, topic_prefix, module_schema, monkeypatch) as running:
        yield running


async def test_alerts_become_records_on_chimera_alerts(api: NotifierApi) -> None:
    answer = await api.api.client.post(PATH, json=PAYLOAD, headers=await api.headers("ingest"))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 2}
    records = await read_topics(api.api.settings, (Topic.ALERTS,))
    by_key = {r.key: orjson.loads(r.value) for r in records}
    assert set(by_key) == {b"am-7be4a3ab1c7c2f5d", b"am-e3b0c44298fc1c14"} and len(records) == 2
    assert by_key[b"am-7be4a3ab1c7c2f5d"] == {
        "fingerprint": "am-7be4a3ab1c7c2f5d", "status": "firing",
        "starts_at": "2024-05-01T12:00:00.123456Z", "ends_at": None, "fired_at": "2024-05-01T12:00:00.123456Z",
        "labels": PAYLOAD["alerts"][0]["labels"], "annotations": PAYLOAD["alerts"][0]["annotations"],
        "severity": "critical", "name": "PoolNodeDown", "value": None, "threshold": None, "rule_id": None,
        "alert_id": None, "reason": None, "generator_url": PAYLOAD["alerts"][0]["generatorURL"],
        "source": "alertmanager",
    }
    resolved = by_key[b"am-e3b0c44298fc1c14"]
    assert (resolved["status"], resolved["starts_at"], resolved["ends_at"], resolved["fired_at"]) == (
        "resolved", "2024-05-01T11:00:00Z", "2024-05-01T11:45:30.500000Z", None)
    assert (resolved["name"], resolved["severity"], resolved["reason"]) == (
        "StratumLatencyHigh", "warning", "resolved in Alertmanager")


async def test_a_bad_alert_is_a_422_naming_it_and_nothing_is_published(api: NotifierApi) -> None:
    payload = copy.deepcopy(PAYLOAD)
    del payload["alerts"][1]["labels"]["alertname"]
    payload["alerts"][0]["startsAt"] = "yesterday"
    answer = await api.api.client.post(PATH, json=payload, headers=await api.headers("ingest"))
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in answer.json()["details"]] == ["body.alerts[0].startsAt",
                                                              "body.alerts[1].labels.alertname"]
    not_an_object = await api.api.client.post(PATH, json=[PAYLOAD], headers=await api.headers("ingest"))
    assert not_an_object.status_code == 422 and not_an_object.json()["details"][0]["field"].startswith("body")
    assert await read_topics(api.api.settings, (Topic.ALERTS,)) == []


async def test_the_webhook_needs_an_ingest_key_and_a_bounded_body(api: NotifierApi) -> None:
    client = api.api.client
    assert (await client.post(PATH, json=PAYLOAD)).status_code == 401
    assert (await client.post(PATH, json=PAYLOAD, headers=await api.headers("read", "admin"))).status_code == 403
    assert (await client.post(PATH, json=PAYLOAD, headers=await api.miner_headers("bc1qminer"))).status_code == 403
    large = copy.deepcopy(PAYLOAD)  # a large outage: 500 alerts, well past the app's default 64 KiB
    large["alerts"] = [{**PAYLOAD["alerts"][0], "labels": {**PAYLOAD["alerts"][0]["labels"], "instance": f"n{i}"},
                        "fingerprint": f"{i:016x}"} for i in range(500)]
    assert len(orjson.dumps(large)) > 64 * 1024
    answer = await client.post(PATH, json=large, headers=await api.headers("ingest"))
    assert answer.status_code == 200 and answer.json() == {"accepted": 500}, answer.text
    huge = {**PAYLOAD, "padding": "x" * (4 * 1024 * 1024)}  # past its own limit (4 MiB)
    answer = await client.post(PATH, json=huge, headers=await api.headers("ingest"))
    assert answer.status_code == 413 and answer.json()["details"][0]["field"] == "body"
    documented = (await client.get("/openapi.json")).json()["paths"][PATH]["post"]
    assert documented["x-max-body-bytes"] == 4 * 1024 * 1024


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: a connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_kafka_unreachable_is_a_503_with_retry_after_as_documented(
    endpoints: Endpoints, topic_prefix: str, module_schema: str, monkeypatch: pytest.MonkeyPatch, closed_port: int,
) -> None:
    async with notifier_api(endpoints, topic_prefix, module_schema, monkeypatch, setup=False,
                            kafka_bootstrap_servers=f"127.0.0.1:{closed_port}") as api:
        ingest = await api.headers("ingest")
        for _ in range(2):  # the second while the reconnection backs off: at once, the same way
            answer = await api.api.client.post(PATH, json=PAYLOAD, headers=ingest)
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["Retry-After"]) >= 1
        document = (await api.api.client.get("/openapi.json")).json()
        documented = document["paths"][PATH]["post"]["responses"]["503"]
        assert "Retry-After" in documented["headers"] and "Kafka" in documented["description"]
        # Only the webhook needs Kafka: the rest of the notifier's API works on.
        assert (await api.api.client.get("/api/silences", headers=await api.headers("read"))).status_code == 200
