"""/healthz, /readyz, /metrics and the OpenAPI document."""

from __future__ import annotations

import pytest

from tests.integration.ingest.conftest import Api
from tests.integration.ingest.helpers import block, share

pytestmark = pytest.mark.integration


async def test_health_and_readiness_need_no_key(api: Api) -> None:
    health = await api.client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"kafka": "ok", "postgres": "ok"}}


async def test_metrics_count_events_by_type_and_reason_with_bounded_routes(api: Api) -> None:
    headers = await api.headers("ingest")
    assert (await api.client.post("/v1/events", json=[share(), share(), block()],
                                  headers=headers)).status_code == 202
    bad = [share(), share(difficulty=0), {**share(), "type": "payout"}]
    assert (await api.client.post("/v1/events", json=bad, headers=headers)).status_code == 422
    assert (await api.client.post("/v1/events", content=b"x", headers=headers)).status_code == 415
    for miner in ("a", "b", "c"):
        await api.client.get(f"/no/such/path/{miner}")

    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    expected = [
        'chimera_ingest_events_received_total{type="share"} 4.0',
        'chimera_ingest_events_accepted_total{type="share"} 2.0',
        'chimera_ingest_events_accepted_total{type="block"} 1.0',
        'chimera_ingest_events_rejected_total{reason="invalid",type="share"} 2.0',
        'chimera_ingest_events_rejected_total{reason="invalid",type="other"} 1.0',
        'chimera_ingest_batches_rejected_total{reason="unsupported_media_type"} 1.0',
        'chimera_ingest_batch_events_count 1.0',
        'chimera_kafka_produce_duration_seconds_count{outcome="acknowledged"} 1.0',
        'chimera_http_request_duration_seconds_count{method="POST",route="/v1/events",status="202"} 1.0',
        'chimera_http_request_duration_seconds_count{method="POST",route="/v1/events",status="422"} 1.0',
        'chimera_http_request_duration_seconds_count{method="GET",route="<unmatched>",status="404"} 3.0',
        "chimera_http_requests_in_flight 1.0",  # this very request
        "chimera_kafka_producer_connected 1.0",
    ]
    missing = [line for line in expected if line not in text]
    assert not missing, missing
    assert "/no/such/path" not in text


async def test_openapi_documents_the_events_endpoint(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/events"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-ndjson"}
    array = content["application/json"]["schema"]
    assert array["type"] == "array" and array["maxItems"] == 10_000
    assert array["items"] == {"$ref": "#/components/schemas/Event"}
    assert {"202", "401", "403", "413", "415", "422", "429", "503"} <= set(operation["responses"])
    schemas = document["components"]["schemas"]
    assert {"Event", "ShareEvent", "BlockEvent", "MinerEvent", "ErrorBody", "EventsAccepted"} <= set(schemas)
    assert "discriminator" in schemas["Event"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path in ("/healthz", "/readyz", "/metrics"):
        assert path in document["paths"]
