"""The attempt log over real HTTP: filters, paging, and a miner's key seeing its own channels' attempts only."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from services.notifier.domain.message_group import message_to_json, test_message

from .conftest import NotifierApi

pytestmark = pytest.mark.integration


async def make_channel(api: NotifierApi, name: str, headers: dict[str, str]) -> int:
    body = {"name": name, "type": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}
    answer = await api.api.client.post("/api/alert-channels", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    channel_id: int = answer.json()["id"]
    return channel_id


async def log_attempts(pool: asyncpg.Pool, channel_id: int, key: str, alert_ids: list[int],
                       fingerprints: list[str], *attempts: tuple[str, int, str | None]) -> None:
    """One notification of a group to the channel and its attempts (status, response code, error),
    written to the tables of migration 0011 as the notifier's delivery log writes them."""
    message = message_to_json(test_message("log"))
    delivery_id = await pool.fetchval(
        "INSERT INTO notification_deliveries (idempotency_key, channel_id, group_key, sequence, message,"
        " fingerprints, alert_ids, attempts) VALUES ($1, $2, $3, 1, $4, $5, $6, $7) RETURNING id",
        key, channel_id, f"group-{key}", message, fingerprints, alert_ids, len(attempts))
    for number, (status, code, error) in enumerate(attempts, start=1):
        await pool.execute(
            "INSERT INTO notifications (delivery_id, channel_id, channel_type, attempt, status, response_code,"
            " error, latency_ms) VALUES ($1, $2, 'webhook', $3, $4, $5, $6, 12.5)",
            delivery_id, channel_id, number, status, code, error)


@pytest.fixture
async def logged(api: NotifierApi) -> dict[str, int]:
    """ops (an admin's): a 503 then a 200 for alerts 11 and 12; alice's: a 400 for alert 12 from Alertmanager."""
    ops = await make_channel(api, "ops", await api.headers("admin"))
    alices = await make_channel(api, "alice's", await api.miner_headers("alice"))
    pool = api.api.container.pool
    await log_attempts(pool, ops, "ops:1", [11, 12], ["fp-a", "fp-b"], ("failed", 503, "HTTP 503"),
                       ("sent", 200, None))
    await log_attempts(pool, alices, "alice:1", [12], ["am-0a1b"], ("dead", 400, "HTTP 400"))
    return {"ops": ops, "alice": alices}


async def listed(api: NotifierApi, query: str, headers: dict[str, str]) -> dict[str, Any]:
    answer = await api.api.client.get(f"/api/notifications{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def summary(body: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(n["idempotency_key"], n["status"], n["attempt"]) for n in body["notifications"]]


async def test_every_attempt_newest_first_with_what_it_was_about(api: NotifierApi, logged: dict[str, int]) -> None:
    body = await listed(api, "", await api.headers("read"))
    assert summary(body) == [("alice:1", "dead", 1), ("ops:1", "sent", 2), ("ops:1", "failed", 1)]
    newest = body["notifications"][0]
    assert {k: newest[k] for k in ("channel_id", "channel_name", "channel_type", "response_code", "error",
                                   "latency_ms", "fingerprints", "alert_ids", "group_key", "kind")} == {
        "channel_id": logged["alice"], "channel_name": "alice's", "channel_type": "webhook", "response_code": 400,
        "error": "HTTP 400", "latency_ms": 12.5, "fingerprints": ["am-0a1b"], "alert_ids": [12],
        "group_key": "group-alice:1", "kind": "group"}
    assert body["next_before"] is None
    assert body["notifications"][1]["delivery_id"] == body["notifications"][2]["delivery_id"]


async def test_filters(api: NotifierApi, logged: dict[str, int]) -> None:
    read = await api.headers("read")
    assert len((await listed(api, "?alert=12", read))["notifications"]) == 3
    assert summary(await listed(api, "?alert=11", read)) == [("ops:1", "sent", 2), ("ops:1", "failed", 1)]
    assert summary(await listed(api, "?alert=am-0a1b", read)) == [("alice:1", "dead", 1)]
    assert summary(await listed(api, "?alert=fp-b&status=failed", read)) == [("ops:1", "failed", 1)]
    assert summary(await listed(api, f"?channel={logged['ops']}&status=sent", read)) == [("ops:1", "sent", 2)]
    assert (await listed(api, "?alert=13", read))["notifications"] == []


async def test_pages_by_id(api: NotifierApi, logged: dict[str, int]) -> None:
    read = await api.headers("read")
    first = await listed(api, "?limit=2", read)
    assert summary(first) == [("alice:1", "dead", 1), ("ops:1", "sent", 2)]
    assert first["next_before"] == first["notifications"][1]["id"]
    rest = await listed(api, f"?limit=2&before={first['next_before']}", read)
    assert summary(rest) == [("ops:1", "failed", 1)] and rest["next_before"] is None


async def test_a_miner_key_sees_its_own_channels_attempts_only(api: NotifierApi, logged: dict[str, int]) -> None:
    alice = await api.miner_headers("alice")
    assert summary(await listed(api, "", alice)) == [("alice:1", "dead", 1)]
    assert (await listed(api, f"?channel={logged['ops']}", alice))["notifications"] == []
    assert (await listed(api, "", await api.miner_headers("bob")))["notifications"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("?status=bogus", "query.status"), ("?limit=0", "query.limit"), ("?limit=1001", "query.limit"),
     ("?before=0", "query.before"), ("?channel=x", "query.channel"), ("?alert=" + "9" * 30, "query.alert"),
     ("?alert=" + "f" * 201, "query.alert")],
)
async def test_a_bad_query_is_a_422_naming_the_parameter(shared_api: NotifierApi, query: str, field: str) -> None:
    answer = await shared_api.api.client.get(f"/api/notifications{query}", headers=await shared_api.headers("read"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"][0]["field"] == field


async def test_scopes_guard_the_log(shared_api: NotifierApi) -> None:
    assert (await shared_api.api.client.get("/api/notifications")).status_code == 401
    ingest = await shared_api.headers("ingest")
    assert (await shared_api.api.client.get("/api/notifications", headers=ingest)).status_code == 403
