"""POST /v1/events with and without the fast share checks: the same records in the real broker.

SHARE_FAST_CHECKS only changes how the service gets to the records, never
which records: per event the topic, key and value bytes must be what the
models' path (`decode_batch` + `encode_event`) writes, and a batch the
models refuse must leave nothing behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from shared.events import TOPIC_BY_TYPE, decode_event, encode_event
from shared.kafka.topics import topic_name
from tests.conftest import Endpoints
from tests.integration.ingest.conftest import Api, make_settings, serve
from tests.integration.ingest.helpers import block, miner_event, now_ms, read_topics, share

pytestmark = pytest.mark.integration


@pytest.fixture(params=[True, False], ids=["fast-checks", "models-only"])
async def either_api(request: pytest.FixtureRequest, endpoints: Endpoints, topic_prefix: str,
                     db_schema: str) -> AsyncIterator[Api]:
    settings = make_settings(endpoints, topic_prefix, db_schema, share_fast_checks=request.param)
    async for running in serve(settings):
        yield running


def the_batch() -> list[dict[str, object]]:
    ts_ms = now_ms()
    return [
        share("alice", ts=ts_ms - 1),
        share("bob", ts="2026-01-01T02:00:00.123456+02:00", pool="eu.2", worker="rig_7"),
        share("carol", difficulty=7, status="rejected", reject_reason="low difficulty \u00e9",
              actual_difficulty=3),
        block("alice"),
        share("dave", event_id="事件-1"),  # not ASCII: the models decide this one
        miner_event("erin"),
        {k: v for k, v in share("frank", ts=ts_ms - 999).items() if k not in ("pool", "worker")},
        share("grace", extra_field=[1, 2]),
    ]


async def test_records_are_the_models_bytes_either_way(either_api: Api) -> None:
    api = either_api
    events = the_batch()
    response = await api.client.post("/v1/events", json=events, headers=await api.headers("ingest"))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(events)}
    stored = {orjson.loads(r.value)["event_id"]: r for r in await read_topics(api.settings)}
    assert len(stored) == len(events)
    for event in events:
        model = decode_event(orjson.dumps(event))
        record = stored[str(event["event_id"])]
        assert record.topic == topic_name(api.settings, TOPIC_BY_TYPE[model.type])
        assert record.key == model.miner.encode()
        assert record.value == encode_event(model)


async def test_one_refused_event_refuses_the_batch_with_the_models_words(either_api: Api) -> None:
    api = either_api
    events = [share("alice"), share("bob"), share("carol", difficulty=0), block("dave")]
    response = await api.client.post("/v1/events", json=events, headers=await api.headers("ingest"))
    assert response.status_code == 422, response.text
    (detail,) = response.json()["details"]
    assert (detail["index"], detail["field"]) == (2, "difficulty")
    assert "greater than 0" in detail["message"]
    assert await read_topics(api.settings) == []


async def test_ndjson_shares_take_the_same_path(either_api: Api) -> None:
    api = either_api
    events = [share("alice"), share("bob"), miner_event("carol")]
    headers = {**await api.headers("ingest"), "Content-Type": "application/x-ndjson"}
    raw = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    response = await api.client.post("/v1/events", content=raw, headers=headers)
    assert response.status_code == 202, response.text
    stored = {orjson.loads(r.value)["event_id"]: r.value for r in await read_topics(api.settings)}
    assert stored == {e["event_id"]: encode_event(decode_event(orjson.dumps(e))) for e in events}
