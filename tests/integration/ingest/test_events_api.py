"""POST /v1/events over real HTTP into the real broker."""

from __future__ import annotations

import orjson
import pytest

from shared.kafka.topics import Topic, topic_name
from tests.integration.ingest.conftest import Api
from tests.integration.ingest.helpers import block, miner_event, read_topics, share

pytestmark = pytest.mark.integration


async def test_each_event_type_lands_in_its_topic_keyed_by_miner(api: Api) -> None:
    headers = await api.headers("ingest")
    events = [share("alice"), share("bob"), block("alice"), miner_event("carol"), miner_event("bob")]
    response = await api.client.post("/v1/events", json=events, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 5}

    records = await read_topics(api.settings)
    assert len(records) == 5
    topics = {
        "share": topic_name(api.settings, Topic.SHARES),
        "block": topic_name(api.settings, Topic.BLOCKS),
        "miner": topic_name(api.settings, Topic.MINERS),
    }
    by_id = {orjson.loads(r.value)["event_id"]: r for r in records}
    for event in events:
        record = by_id[event["event_id"]]
        assert record.topic == topics[event["type"]]
        assert record.key == event["miner"].encode()
        stored = orjson.loads(record.value)
        assert stored["miner"] == event["miner"] and stored["type"] == event["type"]


async def test_ndjson_batch_is_accepted(api: Api) -> None:
    headers = {**await api.headers("ingest"), "Content-Type": "application/x-ndjson"}
    events = [share(), block(), miner_event()]
    body = b"\n".join(orjson.dumps(e) for e in events) + b"\n\n"
    response = await api.client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 3}
    stored = {orjson.loads(r.value)["event_id"] for r in await read_topics(api.settings)}
    assert stored == {e["event_id"] for e in events}


async def test_sql_looking_strings_are_stored_verbatim(api: Api) -> None:
    """Text fields go to Kafka as they came; nothing in the path interprets them."""
    sql = "x';DROP TABLE api_keys;--"
    events = [
        share(miner=sql.replace(" ", ""), event_id=f"{sql} 1", reject_reason=f"{sql} OR 1=1",
              status="rejected"),
        miner_event(miner="m'--", event_id="1; DELETE FROM dashboards", user_agent=f"{sql} /*"),
        block(miner="b\"||pg_sleep(10)", event_id="' UNION SELECT key_hash FROM api_keys --"),
    ]
    response = await api.client.post("/v1/events", json=events, headers=await api.headers("ingest"))
    assert response.status_code == 202, response.text
    stored = {orjson.loads(r.value)["event_id"]: (r.key, orjson.loads(r.value))
              for r in await read_topics(api.settings)}
    assert set(stored) == {e["event_id"] for e in events}
    for event in events:
        key, value = stored[event["event_id"]]
        assert key == event["miner"].encode()
        for field in ("miner", "reject_reason", "user_agent", "event_id"):
            if field in event:
                assert value[field] == event[field]
    # The key table is intact and still serves keys.
    assert (await api.client.get("/healthz")).status_code == 200
    again = await api.client.post("/v1/events", json=[share()], headers=await api.headers("ingest"))
    assert again.status_code == 202
