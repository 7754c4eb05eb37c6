"""PostgreSQL stopped under a running ingest service: /readyz names it, /healthz stays up,
reads answer a clear 503 (never a 500), and everything recovers once it is back.

Runs a PRIVATE PostgreSQL (the dev stack's code, a free port) so it can be stopped
and started without disturbing the other tests.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from chimera.devstack.postgres import PostgresNode
from tests.conftest import Endpoints
from tests.integration.ingest.conftest import make_settings, serve

pytestmark = pytest.mark.integration


async def test_readyz_names_postgres_while_it_is_down_and_all_recovers(
    private_postgres: PostgresNode, endpoints: Endpoints, topic_prefix: str,
) -> None:
    url = private_postgres.status().database_url
    assert url is not None
    settings = make_settings(Endpoints(endpoints.kafka_bootstrap_servers, url), topic_prefix, "ingest",
                             readiness_timeout_s=1.0)
    async for api in serve(settings):
        headers = await api.headers("read")
        assert (await api.client.get("/api/pool/stats", headers=headers)).status_code == 200
        assert (await api.client.get("/readyz")).status_code == 200

        await asyncio.to_thread(private_postgres.down)
        ready = await api.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"kafka": "ok", "postgres": "down"}
        assert (await api.client.get("/healthz")).status_code == 200
        stats = await api.client.get("/api/pool/stats", headers=headers)  # the key is cached: a read
        assert stats.status_code == 503, stats.text
        assert "error" in stats.json()

        await asyncio.to_thread(private_postgres.up)
        deadline = time.monotonic() + 30
        while (await api.client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "/readyz did not recover after PostgreSQL came back"
            await asyncio.sleep(0.5)
        assert (await api.client.get("/api/pool/stats", headers=headers)).status_code == 200
