"""Keys limited to one miner (`miner:<name>`), end to end: the real app over HTTP, PostgreSQL, `chimera keys`.

Alice's key reads alice's stats, metrics and alerts, nothing of bob's (403,
or 404 for an alert, as if it did not exist), and is refused everywhere else
exactly as a key lacking the route's scope is.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.domain.keys import display_prefix, format_key, hash_key
from shared.access import miner_scope
from tests.integration.ingest.conftest import Api
from tests.integration.ingest.helpers import share

pytestmark = pytest.mark.integration

ALL_SCOPES = ("ingest", "read", "admin")


async def miner_key(api: Api, miner: str, name: str = "phone") -> dict[str, str]:
    store = ApiKeyStore(api.container.pool)
    _, plaintext = await store.create(name, [miner_scope(miner)])
    return {"Authorization": f"Bearer {plaintext}"}


async def hand_written_key(api: Api, scopes: list[str]) -> dict[str, str]:
    """A key whose `api_keys.scopes` is written as is, as by hand or by another version."""
    plaintext = format_key(os.urandom(32))
    await api.container.pool.execute(
        "INSERT INTO api_keys (name, key_hash, key_prefix, scopes) VALUES ('by-hand', $1, $2, $3)",
        hash_key(plaintext), display_prefix(plaintext), scopes)
    return {"Authorization": f"Bearer {plaintext}"}


async def insert_minute(db: asyncpg.Pool, miner: str) -> None:
    """One complete minute of one worker, so the pool knows the miner."""
    ts = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    await db.execute(
        "INSERT INTO miner_metrics (pool, miner, worker, ts, accepted, rejected, stale, difficulty_accepted,"
        " best_difficulty, last_share_at) VALUES ('main', $1, 'rig1', $2, 3, 0, 0, 3, 1, $2)", miner, ts)


async def insert_alert(db: asyncpg.Pool, name: str, labels: dict[str, str], status: str = "firing") -> int:
    alert_id: int = await db.fetchval(
        """INSERT INTO alerts (name, severity, status, labels, fingerprint, started_at, fired_at, resolved_at)
           VALUES ($1, 'warning', $2::text, $3, $4, now(), now(),
                   CASE WHEN $2::text = 'resolved' THEN now() END) RETURNING id""",
        name, status, labels, f"test:{uuid.uuid4()}")
    return alert_id


@pytest.fixture(scope="module")
async def seeded(module_api: Api) -> dict[str, int]:
    """Alice and bob known to the pool; an alert of each, a resolved one of alice's and one of the pool."""
    db = module_api.container.pool
    await insert_minute(db, "alice")
    await insert_minute(db, "bob")
    return {
        "alice": await insert_alert(db, "alice slow", {"miner": "alice", "worker": "rig1"}),
        "alice_resolved": await insert_alert(db, "alice gone", {"miner": "alice"}, status="resolved"),
        "bob": await insert_alert(db, "bob slow", {"miner": "bob", "worker": "rig1"}),
        "pool": await insert_alert(db, "pool slow", {"pool": "main"}),
    }


# --- what alice's key may read ----------------------------------------------------------------------------------

async def test_a_miner_key_reads_its_miners_stats_and_metrics(module_api: Api, seeded: dict[str, int]) -> None:
    alice = await miner_key(module_api, "alice")
    stats = await module_api.client.get("/api/miners/alice/stats", headers=alice)
    assert stats.status_code == 200, stats.text
    assert stats.json()["miner"] == "alice" and [w["worker"] for w in stats.json()["workers"]] == ["rig1"]
    history = await module_api.client.get("/api/miners/alice/history", headers=alice)
    assert history.status_code == 200, history.text
    assert [row["worker"] for row in history.json()] == ["rig1"]
    metrics = await module_api.client.get("/api/metrics/miner/alice", headers=alice,
                                          params={"from": "2020-01-01T00:00:00Z"})
    assert metrics.status_code == 200, metrics.text
    assert metrics.json()["miner"] == "alice" and len(metrics.json()["rows"]) == 1


@pytest.mark.parametrize(("path", "field"), [
    ("/api/miners/bob/stats", "path.miner"),
    ("/api/miners/bob/history", "path.miner"),
    ("/api/miners/carol/stats", "path.miner"),  # unknown to the pool: 403 all the same, nothing learnt
    ("/api/metrics/miner/bob", "path.minerId"),
])
async def test_another_miner_is_403_naming_the_field(
        module_api: Api, seeded: dict[str, int], path: str, field: str) -> None:
    answer = await module_api.client.get(path, headers=await miner_key(module_api, "alice"))
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "this key may read miner alice only"
    assert [d["field"] for d in answer.json()["details"]] == [field]
    # An ordinary read key still reads any miner.
    assert (await module_api.client.get(path, headers=await module_api.headers("read"))).status_code in (200, 404)


async def test_a_miner_key_lists_its_miners_alerts_only(module_api: Api, seeded: dict[str, int]) -> None:
    alice, read = await miner_key(module_api, "alice"), await module_api.headers("read")

    async def ids(headers: dict[str, str], **params: Any) -> list[int]:
        answer = await module_api.client.get("/api/alerts", headers=headers, params=params)
        assert answer.status_code == 200, answer.text
        return sorted(a["id"] for a in answer.json()["alerts"])

    assert await ids(alice) == sorted([seeded["alice"], seeded["alice_resolved"]])
    assert await ids(alice, miner="alice") == sorted([seeded["alice"], seeded["alice_resolved"]])
    assert await ids(alice, status="firing") == [seeded["alice"]]  # the other filters still apply
    assert await ids(alice, limit="1", offset="1") == [min(seeded["alice"], seeded["alice_resolved"])]
    assert await ids(read) == sorted(seeded.values())
    asked_for_bob = await module_api.client.get("/api/alerts", headers=alice, params={"miner": "bob"})
    assert asked_for_bob.status_code == 403
    assert [d["field"] for d in asked_for_bob.json()["details"]] == ["query.miner"]


async def test_another_miners_alert_is_not_found_like_a_missing_one(
        module_api: Api, seeded: dict[str, int]) -> None:
    alice, read = await miner_key(module_api, "alice"), await module_api.headers("read")
    own = await module_api.client.get(f"/api/alerts/{seeded['alice']}", headers=alice)
    assert own.status_code == 200 and own.json()["labels"]["miner"] == "alice"
    missing_id = max(seeded.values()) + 1000
    for alert_id in (seeded["bob"], seeded["pool"], missing_id):
        answer = await module_api.client.get(f"/api/alerts/{alert_id}", headers=alice)
        assert answer.status_code == 404
        assert answer.json() == {"error": f"no alert {alert_id}",
                                 "details": [{"field": "path.alertId", "message": "not found"}]}
    assert (await module_api.client.get(f"/api/alerts/{seeded['bob']}", headers=read)).status_code == 200


# --- everything else: refused as a key lacking the scope is -----------------------------------------------------

DASHBOARD = {"name": "d", "config": {}, "is_public": False}
RULE = {"name": "r", "metric": "cpu_usage", "operator": ">", "threshold": 1, "duration": "1m", "severity": "info"}
ALERT = {"name": "a", "severity": "info", "labels": {"miner": "alice"}, "description": "d"}
SOME_ID = str(uuid.uuid4())


@pytest.mark.parametrize(("scope", "method", "path", "body"), [
    ("read", "GET", "/api/pool/stats", None),
    ("read", "GET", "/api/metrics", None),
    ("read", "GET", "/api/metrics/performance", None),
    ("read", "GET", "/api/query?query=up", None),
    ("read", "GET", "/api/query_range?query=up&start=0&end=1&step=1", None),
    ("read", "GET", "/api/alert-rules", None),
    ("read", "GET", "/api/alert-rules/metrics", None),
    ("read", "GET", "/api/alert-rules/1", None),
    ("ingest", "POST", "/v1/events", [share(miner="alice")]),
    ("ingest", "POST", "/api/metrics", {"name": "m", "value": 1, "type": "gauge"}),
    ("ingest", "POST", "/api/metrics/performance", {"host": "h", "service": "s", "cpu_usage": 1}),
    ("ingest", "POST", "/api/metrics/miner", {"miner": "alice", "worker": "rig1", "reported_hashrate": 1}),
    ("admin", "POST", "/api/dashboards", DASHBOARD),
    ("admin", "PUT", f"/api/dashboards/{SOME_ID}", DASHBOARD),
    ("admin", "PATCH", f"/api/dashboards/{SOME_ID}", {"name": "e"}),
    ("admin", "DELETE", f"/api/dashboards/{SOME_ID}", None),
    ("admin", "POST", "/api/alert-rules", RULE),
    ("admin", "PUT", "/api/alert-rules/1", RULE),
    ("admin", "DELETE", "/api/alert-rules/1", None),
    ("admin", "POST", "/api/alert-rules/evaluate", None),
    ("admin", "POST", "/api/alerts", ALERT),
    ("admin", "PUT", "/api/alerts/1/resolve", None),
])
async def test_every_other_route_refuses_a_miner_key_as_one_lacking_the_scope(
        module_api: Api, seeded: dict[str, int], scope: str, method: str, path: str, body: Any) -> None:
    lacking = await module_api.headers(*(s for s in ALL_SCOPES if s != scope))
    alice = await miner_key(module_api, "alice")
    answers = [await module_api.client.request(method, path, json=body, headers=headers)
               for headers in (alice, lacking)]
    assert answers[0].status_code == 403, answers[0].text
    assert answers[0].json() == {"error": f"this API key lacks the '{scope}' scope", "details": []}
    assert (answers[1].status_code, answers[1].json()) == (answers[0].status_code, answers[0].json())


async def test_a_private_dashboard_is_hidden_as_from_a_key_without_read(module_api: Api) -> None:
    created = await module_api.client.post("/api/dashboards", json=DASHBOARD,
                                           headers=await module_api.headers("admin", "read"))
    assert created.status_code == 201, created.text
    path = f"/api/dashboards/{created.json()['id']}"
    as_miner = await module_api.client.get(path, headers=await miner_key(module_api, "alice"))
    as_ingest = await module_api.client.get(path, headers=await module_api.headers("ingest"))
    assert as_miner.status_code == 404  # someone else's private dashboard, as for any key
    assert (as_miner.status_code, as_miner.json()) == (as_ingest.status_code, as_ingest.json())
    listed = await module_api.client.get("/api/dashboards", headers=await miner_key(module_api, "alice"))
    assert created.json()["id"] not in [d["id"] for d in listed.json()["dashboards"]]


# --- keys as stored, and `chimera keys` -------------------------------------------------------------------------

async def test_stored_rows_never_grant_more_than_they_say(module_api: Api, seeded: dict[str, int]) -> None:
    mixed = await hand_written_key(module_api, ["miner:alice", "read"])  # held to its miner
    assert (await module_api.client.get("/api/miners/alice/stats", headers=mixed)).status_code == 200
    assert (await module_api.client.get("/api/miners/bob/stats", headers=mixed)).status_code == 403
    assert (await module_api.client.get("/api/pool/stats", headers=mixed)).status_code == 403
    two_miners = await hand_written_key(module_api, ["miner:alice", "miner:bob"])  # grants nothing
    assert (await module_api.client.get("/api/miners/alice/stats", headers=two_miners)).status_code == 403
    unknown = await hand_written_key(module_api, ["miners:alice"])
    assert (await module_api.client.get("/api/miners/alice/stats", headers=unknown)).status_code == 403


def chimera(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": api.settings.database_url,
           "DATABASE_SCHEMA": api.settings.database_schema}
    return subprocess.run([sys.executable, "-m", "chimera.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


async def test_chimera_keys_creates_and_lists_a_miner_key(module_api: Api, seeded: dict[str, int]) -> None:
    created = await asyncio.to_thread(chimera, module_api, "keys", "create", "--name", "alice-phone",
                                      "--scopes", "miner:alice")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await module_api.client.get("/api/miners/alice/stats", headers=headers)).status_code == 200
    assert (await module_api.client.get("/api/miners/bob/stats", headers=headers)).status_code == 403
    listed = await asyncio.to_thread(chimera, module_api, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if "alice-phone" in row)
    assert "[miner:alice]" in line


@pytest.mark.parametrize(("scopes", "says"), [
    ("miner:alice,read", "only scope"),
    ("ingest,miner:alice", "only scope"),
    ("miner:alice,miner:bob", "one miner"),
    ("miner:", "names no miner"),
    ("miner:al ice", "names no miner"),
])
async def test_chimera_keys_refuses_a_miner_scope_that_is_not_alone_or_not_a_miner(
        module_api: Api, scopes: str, says: str) -> None:
    done = await asyncio.to_thread(chimera, module_api, "keys", "create", "--name", "x", "--scopes", scopes)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert says in done.stderr and "--scopes" in done.stderr


async def test_the_openapi_document_describes_the_miner_scope(module_api: Api) -> None:
    document = (await module_api.client.get("/openapi.json")).json()
    assert "miner:<name>" in document["components"]["securitySchemes"]["bearerAuth"]["description"]
