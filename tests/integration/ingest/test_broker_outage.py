"""A 202 is never returned while the broker is stopped (issue 3, "Tests that must exist").

Runs its own single-node Kafka (the dev stack's code, a private state folder
and free ports) so it can stop and restart the broker without disturbing
the other tests.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from chimera.devstack.kafka import KafkaNode
from tests.conftest import Endpoints
from tests.integration.ingest.conftest import Api, make_settings, serve
from tests.integration.ingest.helpers import block, read_topics, share

pytestmark = pytest.mark.integration

PRODUCE_TIMEOUT_S = 2.0


async def post(
    api: Api, headers: dict[str, str], events: list[dict[str, Any]]
) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    response = await api.client.post("/v1/events", json=events, headers=headers)
    return response.status_code, dict(response.headers), time.monotonic() - started


async def test_no_202_while_the_broker_is_down_and_exact_count_after(
    private_kafka: KafkaNode, endpoints: Endpoints, db_schema: str, topic_prefix: str,
) -> None:
    settings = make_settings(
        Endpoints(private_kafka.bootstrap_servers, endpoints.database_url), topic_prefix, db_schema,
        kafka_produce_timeout_s=PRODUCE_TIMEOUT_S, kafka_reconnect_max_backoff_s=1.0,
        kafka_retry_after_s=1, readiness_timeout_s=1.0,
    )
    accepted: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    async for api in serve(settings):
        headers = await api.headers("ingest")
        before = [share("alice"), block("bob")]
        assert (await post(api, headers, before))[0] == 202
        accepted += before

        await asyncio.to_thread(private_kafka.down)

        # Every batch sent while the broker is down: 503 with Retry-After, in bounded time.
        for _ in range(3):
            batch = [share("alice"), share("carol")]
            status, response_headers, elapsed_s = await post(api, headers, batch)
            assert status == 503
            assert int(response_headers["retry-after"]) >= 1
            assert elapsed_s < PRODUCE_TIMEOUT_S + 3
            refused += batch
        ready = await api.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"kafka": "down", "postgres": "ok"}

        await asyncio.to_thread(private_kafka.up)

        # Retry as a client would, honouring Retry-After, until the broker is back.
        deadline = time.monotonic() + 60
        while True:
            batch = [share("alice"), block("dave")]
            status, response_headers, _ = await post(api, headers, batch)
            if status == 202:
                accepted += batch
                break
            assert status == 503, status
            refused += batch
            assert time.monotonic() < deadline, "ingest did not recover after the broker came back"
            await asyncio.sleep(float(response_headers["retry-after"]))
        after = [share("erin") for _ in range(10)]
        assert (await post(api, headers, after))[0] == 202
        accepted += after
        assert (await api.client.get("/readyz")).status_code == 200

        # Whatever aiokafka might still hold from the refused batches has had time to surface.
        await asyncio.sleep(1.0)
        records = await read_topics(settings)
        stored_ids = [orjson.loads(r.value)["event_id"] for r in records]
        assert len(stored_ids) == len(set(stored_ids)), "duplicates"
        assert sorted(stored_ids) == sorted(e["event_id"] for e in accepted)
        assert not set(stored_ids) & {e["event_id"] for e in refused}
