"""The silences API over real HTTP on the real database: states, expiry kept on record, bad bodies named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notifier.adapters.silence_store import SilenceStore
from services.notifier.domain.routing import silenced

from .conftest import NotifierApi

pytestmark = pytest.mark.integration

MATCHERS = [{"name": "alertname", "op": "=", "value": "worker offline"},
            {"name": "worker", "op": "=~", "value": "rig-[0-9]+"}]


def iso(at: datetime) -> str:
    return at.isoformat()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_silence_is_made_listed_by_state_and_expired_but_kept(api: NotifierApi) -> None:
    admin, read = await api.headers("admin"), await api.headers("read")
    client = api.api.client
    now = datetime.now(UTC)
    active = await client.post("/api/silences", headers=admin,
                               json={"matchers": MATCHERS, "duration": "2h", "comment": "rig room rewiring"})
    assert active.status_code == 201, active.text
    silence = active.json()
    assert silence["state"] == "active" and silence["comment"] == "rig room rewiring"
    assert silence["matchers"] == MATCHERS and silence["created_by"] == "test"  # the key's name
    assert parse(silence["ends_at"]) - parse(silence["starts_at"]) == timedelta(hours=2)
    assert abs(parse(silence["starts_at"]) - now) < timedelta(seconds=30)
    pending = (await client.post("/api/silences", headers=admin, json={
        "matchers": MATCHERS[:1], "starts_at": iso(now + timedelta(days=1)), "ends_at": iso(now + timedelta(days=2)),
        "created_by": "night shift"})).json()
    assert pending["state"] == "pending" and pending["created_by"] == "night shift"

    async def ids(state: str | None = None) -> list[str]:
        query = f"?state={state}" if state else ""
        answer = await client.get(f"/api/silences{query}", headers=read)
        assert answer.status_code == 200, answer.text
        return [s["id"] for s in answer.json()["silences"]]

    assert await ids("active") == [silence["id"]] and await ids("pending") == [pending["id"]]
    assert await ids("expired") == [] and set(await ids()) == {silence["id"], pending["id"]}
    assert (await client.get(f"/api/silences/{silence['id']}", headers=read)).json() == silence

    expired = await client.delete(f"/api/silences/{silence['id']}", headers=admin)
    assert expired.status_code == 200 and expired.json()["state"] == "expired"
    assert parse(expired.json()["ends_at"]) <= datetime.now(UTC)
    assert expired.json()["starts_at"] == silence["starts_at"]
    again = await client.delete(f"/api/silences/{silence['id']}", headers=admin)
    assert again.status_code == 200 and again.json() == expired.json()
    cancelled = (await client.delete(f"/api/silences/{pending['id']}", headers=admin)).json()
    assert cancelled["state"] == "expired" and parse(cancelled["starts_at"]) < parse(cancelled["ends_at"])
    assert set(await ids("expired")) == {silence["id"], pending["id"]} and await ids("active") == []


async def test_unknown_and_malformed_ids(shared_api: NotifierApi) -> None:
    admin = await shared_api.headers("admin")
    unknown = "0b6e8f4a-1111-4222-8333-444455556666"
    read = await shared_api.headers("read")
    assert (await shared_api.api.client.get(f"/api/silences/{unknown}", headers=read)).status_code == 404
    answer = await shared_api.api.client.delete(f"/api/silences/{unknown}", headers=admin)
    assert answer.status_code == 404 and answer.json()["details"][0]["field"] == "path.silenceId"
    malformed = await shared_api.api.client.delete("/api/silences/not-a-uuid", headers=admin)
    assert malformed.status_code == 422 and malformed.json()["details"][0]["field"] == "path.silenceId"


def _later(hours: float) -> str:
    return iso(datetime.now(UTC) + timedelta(hours=hours))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"matchers": [{"name": "worker", "op": "=~", "value": "rig-(["}], "duration": "1h"}, "body.matchers[0].value"),
        ({"matchers": [MATCHERS[0], {"name": "w", "op": "==", "value": "x"}], "duration": "1h"},
         "body.matchers[1].op"),
        ({"matchers": [], "duration": "1h"}, "body.matchers"),
        ({"matchers": [{"name": "worker", "op": "=~", "value": ".*"}], "duration": "1h"}, "body.matchers"),
        ({"matchers": MATCHERS, "starts_at": _later(2), "ends_at": _later(1)}, "body.ends_at"),
        ({"matchers": MATCHERS, "ends_at": _later(-1)}, "body.ends_at"),
        ({"matchers": MATCHERS}, "body.ends_at"),
        ({"matchers": MATCHERS, "ends_at": _later(1), "duration": "1h"}, "body.duration"),
        ({"matchers": MATCHERS, "duration": "an hour"}, "body.duration"),
        ({"matchers": MATCHERS, "ends_at": "2030-01-01T00:00:00"}, "body.ends_at"),
        ({"matchers": MATCHERS, "starts_at": "9999-12-31T00:00:00Z", "duration": "30d"}, "body.duration"),
        ({"matchers": MATCHERS, "duration": "1h", "comment": "a\x00b"}, "body.comment"),
    ],
)
async def test_a_bad_silence_is_a_422_naming_the_field(shared_api: NotifierApi, body: dict[str, Any],
                                                      field: str) -> None:
    answer = await shared_api.api.client.post("/api/silences", json=body, headers=await shared_api.headers("admin"))
    assert answer.status_code == 422, answer.text
    assert field in [d["field"] for d in answer.json()["details"]], answer.json()


async def test_scopes_guard_the_silences_and_a_miner_key_reaches_none(shared_api: NotifierApi) -> None:
    body = {"matchers": MATCHERS, "duration": "1h"}
    client = shared_api.api.client
    assert (await client.get("/api/silences")).status_code == 401
    assert (await client.post("/api/silences", json=body, headers=await shared_api.headers("read"))).status_code == 403
    miner = await shared_api.miner_headers("alice")
    assert (await client.post("/api/silences", json=body, headers=miner)).status_code == 403
    assert (await client.get("/api/silences", headers=miner)).status_code == 403
    made = (await client.post("/api/silences", json=body, headers=await shared_api.headers("admin"))).json()
    assert (await client.get(f"/api/silences/{made['id']}", headers=miner)).status_code == 403
    assert (await client.delete(f"/api/silences/{made['id']}", headers=miner)).status_code == 403


async def test_the_notifier_reads_the_active_and_future_silences(api: NotifierApi) -> None:
    admin = await api.headers("admin")
    client = api.api.client
    now = datetime.now(UTC)
    active = (await client.post("/api/silences", headers=admin, json={"matchers": MATCHERS, "duration": "1h"})).json()
    later = (await client.post("/api/silences", headers=admin, json={
        "matchers": MATCHERS[:1], "starts_at": iso(now + timedelta(hours=3)), "duration": "1h"})).json()
    gone = (await client.post("/api/silences", headers=admin, json={"matchers": MATCHERS, "duration": "1h"})).json()
    await client.delete(f"/api/silences/{gone['id']}", headers=admin)
    silences = await SilenceStore(api.api.container.pool).active_and_future(datetime.now(UTC))
    assert [s.id for s in silences] == [active["id"], later["id"]]
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert silenced({"alertname": "worker offline", "worker": "rig-12"}, silences, now_ms) == active["id"]
    assert silenced({"alertname": "worker offline", "worker": "xrig-12"}, silences, now_ms) is None
    assert silenced({"alertname": "worker offline"}, silences, now_ms + 3 * 3_600_000 + 1) == later["id"]
