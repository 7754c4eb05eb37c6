"""Bad input to POST /v1/events, each case over real HTTP (issue 3, "Bad input").

For every case: the right 4xx, a message naming what is wrong, nothing
written to Kafka, and the service still healthy afterwards. The cases
share one server (module_api); none of them may write anything, so the
topics must stay empty throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from services.ingest.adapters.keys import ApiKeyStore
from tests.integration.ingest.conftest import Api
from tests.integration.ingest.helpers import block, miner_event, read_topics, share

pytestmark = pytest.mark.integration

JSON = "application/json"
NDJSON = "application/x-ndjson"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    return {"api_key_cache_ttl_s": 0.0}


def ndjson(*events: dict[str, Any]) -> bytes:
    return b"\n".join(orjson.dumps(e) for e in events)


@dataclass
class Case:
    body: Callable[[], bytes]
    status: int
    field: str | None = None  # the `field` some detail must name
    index: int | None = None  # ... at this event index
    content_type: str | None = JSON
    message: str = ""  # a fragment of the error or detail message


def _array(*events: dict[str, Any]) -> Callable[[], bytes]:
    return lambda: orjson.dumps(list(events))


def _eleven_mib() -> bytes:
    # Valid events all the way, so only the size is wrong.
    one = orjson.dumps(share(miner="m" * 100, reject_reason="r" * 120, status="rejected"))
    count = 11 * MIB // (len(one) + 1) + 1
    return b"[" + b",".join([one] * count) + b"]"


CASES: dict[str, Case] = {
    "malformed_json": Case(lambda: b'[{"event_id": "x", "type": ', 422, "body",
                           message="not valid JSON"),
    "ndjson_one_bad_line": Case(
        lambda: ndjson(share(), share()) + b'\n{"event_id": "n-3", "type": "share",\n'
        + ndjson(share()),
        422, "", index=2, content_type=NDJSON, message="not valid JSON"),
    "wrong_type_string_difficulty": Case(_array(share(), share(difficulty="5")), 422,
                                         "difficulty", index=1),
    "wrong_type_bool_height": Case(_array(block(height=True)), 422, "height", index=0),
    "wrong_type_object_not_array": Case(lambda: orjson.dumps(share()), 422, "body",
                                        message="JSON array"),
    "nan_difficulty": Case(
        lambda: orjson.dumps([share()])[:-1] + b',' + orjson.dumps(share())[:-1]
        + b',"difficulty":NaN}]', 422, "difficulty", index=1, message="NaN"),
    "infinity_difficulty_ndjson": Case(
        lambda: orjson.dumps(share())[:-1] + b',"actual_difficulty":-Infinity}',
        422, "actual_difficulty", index=0, content_type=NDJSON, message="Infinity"),
    "overflowing_number": Case(
        lambda: b"[" + orjson.dumps(block())[:-1] + b',"network_difficulty":1e999}]',
        422, "network_difficulty", index=0),
    "negative_difficulty": Case(_array(share(difficulty=-1)), 422, "difficulty", index=0,
                                message="greater than 0"),
    "zero_difficulty": Case(_array(share(), share(), share(difficulty=0)), 422, "difficulty",
                            index=2, message="greater than 0"),
    "event_id_65_chars": Case(_array(share(event_id="e" * 65)), 422, "event_id", index=0,
                              message="64"),
    "far_future_ts": Case(
        lambda: orjson.dumps([share(ts=time.time_ns() // 1_000_000 + 3_600_000)]), 422, "ts",
        index=0, message="future"),
    "unknown_type": Case(_array(share(), {**share(), "type": "payout"}), 422, "type", index=1,
                         message="payout"),
    "missing_field": Case(_array(miner_event(), {k: v for k, v in share().items() if k != "miner"}),
                          422, "miner", index=1, message="required"),
    "empty_body": Case(lambda: b"", 422, "body", message="empty"),
    "empty_array": Case(lambda: b"[]", 422, "body", message="empty"),
    "events_10001": Case(lambda: orjson.dumps([share() for _ in range(10_001)]), 413, "body",
                         message="10000"),
    "body_11_mib": Case(_eleven_mib, 413, "body", message="bytes"),
    "wrong_content_type": Case(_array(share()), 415, "header.content-type",
                               content_type="text/plain", message="application/json"),
    "no_content_type": Case(_array(share()), 415, "header.content-type", content_type=None),
}


async def assert_nothing_written_and_healthy(api: Api) -> None:
    assert await read_topics(api.settings) == []
    assert (await api.client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_body_is_refused_with_nothing_written(module_api: Api, name: str) -> None:
    case = CASES[name]
    headers = await module_api.headers("ingest")
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    response = await module_api.client.post("/v1/events", content=case.body(), headers=headers)

    assert response.status_code == case.status, response.text
    body = response.json()
    assert set(body) == {"error", "details"} and body["error"]
    details = body["details"]
    matching = [d for d in details if d["field"] == case.field
                and (case.index is None or d["index"] == case.index)]
    assert matching, f"no detail names field {case.field!r} at index {case.index}: {details}"
    if case.message:
        text = body["error"] + " " + " ".join(d["message"] for d in matching)
        assert case.message.lower() in text.lower(), text
    await assert_nothing_written_and_healthy(module_api)


async def test_streamed_body_over_the_limit_is_refused_while_still_arriving(module_api: Api) -> None:
    """Chunked upload (no Content-Length): the 413 comes once 10 MiB arrived, not after the whole body.

    A raw socket, because HTTP clients read the response only after sending
    the whole body, which would hide when the server answered.
    """
    token = (await module_api.headers("ingest"))["Authorization"]
    host, port = module_api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n"
        f"Content-Type: {JSON}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b" " * MIB
    sent = 0
    answer = b""
    try:
        while sent < 64 * MIB and not answer:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)
            with contextlib.suppress(TimeoutError):
                answer = await asyncio.wait_for(reader.read(65536), 0.02)
        if not answer:
            answer = await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent <= 16 * MIB, f"the server let {sent} bytes arrive before answering"
    await assert_nothing_written_and_healthy(module_api)


async def test_all_or_nothing_many_bad_events_all_listed(module_api: Api) -> None:
    events = [share() for _ in range(50)]
    for i in (3, 17, 42):
        events[i]["difficulty"] = -i
    response = await module_api.client.post(
        "/v1/events", json=events, headers=await module_api.headers("ingest"))
    assert response.status_code == 422
    assert [(d["index"], d["field"]) for d in response.json()["details"]] == [
        (3, "difficulty"), (17, "difficulty"), (42, "difficulty")]
    assert "3 events are invalid" in response.json()["error"]
    await assert_nothing_written_and_healthy(module_api)


async def test_missing_key_is_401(module_api: Api) -> None:
    response = await module_api.client.post("/v1/events", json=[share()])
    assert response.status_code == 401
    assert "API key" in response.json()["error"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    await assert_nothing_written_and_healthy(module_api)


@pytest.mark.parametrize("token", ["chm_" + "A" * 43, "not-a-key", "chm_' OR '1'='1"])
async def test_unknown_key_is_401(module_api: Api, token: str) -> None:
    response = await module_api.client.post(
        "/v1/events", json=[share()], headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "unknown, revoked or expired" in response.json()["error"]
    await assert_nothing_written_and_healthy(module_api)


async def test_malformed_authorization_header_is_401(module_api: Api) -> None:
    response = await module_api.client.post(
        "/v1/events", json=[share()], headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert response.status_code == 401
    assert response.json()["details"][0]["field"] == "header.authorization"
    await assert_nothing_written_and_healthy(module_api)


async def test_revoked_key_is_401(module_api: Api) -> None:
    store = ApiKeyStore(module_api.container.pool)
    record, token = await store.create("to-revoke", {"ingest"})
    headers = {"Authorization": f"Bearer {token}"}
    assert (await module_api.client.post("/v1/events", json=[], headers=headers)).status_code == 422
    assert await store.revoke(record.id)
    response = await module_api.client.post("/v1/events", json=[share()], headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]
    await assert_nothing_written_and_healthy(module_api)


@pytest.mark.parametrize("scopes", [("read",), ("admin",), ("read", "admin")])
async def test_key_without_ingest_scope_is_403(module_api: Api, scopes: tuple[str, ...]) -> None:
    response = await module_api.client.post(
        "/v1/events", json=[share()], headers=await module_api.headers(*scopes))
    assert response.status_code == 403
    assert "'ingest' scope" in response.json()["error"]
    await assert_nothing_written_and_healthy(module_api)
