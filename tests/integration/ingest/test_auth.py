"""API keys end to end: rate limits, usage tracking, and `chimera keys` against the live API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from services.ingest.adapters.keys import ApiKeyStore
from tests.integration.ingest.conftest import Api
from tests.integration.ingest.helpers import read_topics, share

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def module_settings_overrides() -> dict[str, Any]:
    return {"api_key_cache_ttl_s": 0.5, "api_key_touch_interval_s": 0.1}


async def test_over_a_keys_rate_limit_is_429_with_retry_after(module_api: Api) -> None:
    token = await module_api.key("ingest", rate_limit_per_second=0.5)
    headers = {"Authorization": f"Bearer {token}"}
    statuses = [(await module_api.client.post("/v1/events", json=[], headers=headers)).status_code
                for _ in range(3)]
    # A bucket of max(1, 0.5/s * 2 s burst) = 1 token, refilled every 2 s.
    assert statuses == [422, 429, 429]
    limited = await module_api.client.post("/v1/events", json=[share()], headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "rate limit" in limited.json()["error"]
    # Other keys are not affected.
    other = await module_api.client.post("/v1/events", json=[], headers=await module_api.headers("ingest"))
    assert other.status_code == 422
    assert await read_topics(module_api.settings) == []


async def test_use_is_recorded_in_last_used_at(module_api: Api) -> None:
    store = ApiKeyStore(module_api.container.pool)
    record, token = await store.create("usage", {"ingest"})
    assert record.last_used_at is None
    await module_api.client.post("/v1/events", json=[], headers={"Authorization": f"Bearer {token}"})
    for _ in range(50):
        used = {r.id: r for r in await store.list()}[record.id].last_used_at
        if used is not None:
            break
        await asyncio.sleep(0.05)
    assert used is not None and used >= record.created_at


def chimera(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": api.settings.database_url,
           "DATABASE_SCHEMA": api.settings.database_schema}
    return subprocess.run([sys.executable, "-m", "chimera.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


async def test_chimera_keys_create_list_revoke(module_api: Api) -> None:
    created = await asyncio.to_thread(
        chimera, module_api, "keys", "create", "--scopes", "ingest,read", "--name", "pool-node-7",
        "--rate-limit", "50")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("chm_")
    headers = {"Authorization": f"Bearer {token}"}
    accepted = await module_api.client.post("/v1/events", json=[share()], headers=headers)
    assert accepted.status_code == 202

    listed = await asyncio.to_thread(chimera, module_api, "keys", "list")
    assert listed.returncode == 0
    line = next(row for row in listed.stdout.splitlines() if "pool-node-7" in row)
    assert "[ingest,read]" in line and "rate 50/s" in line and token not in listed.stdout
    key_id = line.split()[0]

    revoked = await asyncio.to_thread(chimera, module_api, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    again = await asyncio.to_thread(chimera, module_api, "keys", "revoke", key_id)
    assert again.returncode == 1 and "no active key" in again.stderr
    # Revocation takes effect within the cache TTL (0.5 s here).
    for _ in range(40):
        status = (await module_api.client.post("/v1/events", json=[share()], headers=headers)).status_code
        if status == 401:
            break
        await asyncio.sleep(0.1)
    assert status == 401
    stored = await read_topics(module_api.settings)
    assert len(stored) >= 1  # the accepted batch (and any sent within the TTL window)


@pytest.mark.parametrize("args", [
    ("keys", "create", "--scopes", "read,write", "--name", "x"),
    ("keys", "create", "--scopes", "read", "--name", " "),
    ("keys", "create", "--scopes", "read", "--name", "x", "--rate-limit", "0"),
    ("keys", "revoke", "not-a-uuid"),
])
async def test_chimera_keys_refuses_bad_arguments(module_api: Api, args: tuple[str, ...]) -> None:
    done = await asyncio.to_thread(chimera, module_api, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip()


async def test_revoking_an_unknown_id_fails(module_api: Api) -> None:
    done = await asyncio.to_thread(chimera, module_api, "keys", "revoke", str(uuid.uuid4()))
    assert done.returncode == 1
