"""SIGTERM: in-flight batches still get their 202 and reach Kafka, then the process exits 0.

The service runs as a real process (`python -m services.ingest`). Some
batches are in flight when SIGTERM arrives because their bodies are still
being uploaded, slowly; others are large batches sent at the same moment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.config import IngestSettings
from shared.db.migrate import migrate_database
from shared.db.pool import connect
from shared.kafka.topics import ensure_topics
from tests.integration.ingest.conftest import delete_topics
from tests.integration.ingest.helpers import read_topics, share

pytestmark = pytest.mark.integration


def service_env(settings: IngestSettings) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "KAFKA_TOPIC_PARTITIONS": str(settings.kafka_topic_partitions),
        "DATABASE_URL": settings.database_url,
        "DATABASE_SCHEMA": settings.database_schema,
        "HTTP_PORT": str(settings.http_port),
        "SHUTDOWN_GRACE_S": "15",
        "LOG_LEVEL": "WARNING",
    }


async def started_service(settings: IngestSettings) -> AsyncIterator[subprocess.Popen[bytes]]:
    await migrate_database(settings)
    await ensure_topics(settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "services.ingest"], env=service_env(settings),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the service did not start"
                await asyncio.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        await delete_topics(settings)


async def slow_body(events: list[dict[str, Any]], pieces: int, pause_s: float) -> AsyncIterator[bytes]:
    raw = orjson.dumps(events)
    size = len(raw) // pieces + 1
    for start in range(0, len(raw), size):
        yield raw[start:start + size]
        await asyncio.sleep(pause_s)


async def test_sigterm_finishes_in_flight_batches_then_exits_0(ingest_settings: IngestSettings) -> None:
    settings = ingest_settings
    async for process in started_service(settings):
        conn = await connect(settings)
        try:
            _, token = await ApiKeyStore(conn).create("shutdown", {"ingest"})
        finally:
            await conn.close()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        base_url = f"http://127.0.0.1:{settings.http_port}"
        slow_batches = [[share(f"slow{i}") for _ in range(200)] for i in range(3)]
        big_batches = [[share(f"big{i}") for _ in range(5_000)] for i in range(3)]

        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            slow = [asyncio.create_task(client.post(
                "/v1/events", content=slow_body(batch, pieces=8, pause_s=0.25), headers=headers))
                for batch in slow_batches]
            await asyncio.sleep(0.5)  # headers and the first pieces are in: these are in flight
            big = [asyncio.create_task(client.post(
                "/v1/events", content=orjson.dumps(batch), headers=headers))
                for batch in big_batches]
            # Long enough for their connections and headers to arrive, not for them to finish.
            await asyncio.sleep(0.15)
            process.send_signal(signal.SIGTERM)
            terminated_at = time.monotonic()

            await asyncio.sleep(0.5)
            with pytest.raises(httpx.TransportError):  # no longer taking connections
                async with httpx.AsyncClient(base_url=base_url, timeout=2) as late:
                    await late.get("/healthz")

            responses = await asyncio.gather(*slow, *big)
        assert [r.status_code for r in responses] == [202] * 6, [r.text for r in responses]
        assert [r.json()["accepted"] for r in responses] == [200] * 3 + [5_000] * 3

        exit_code = await asyncio.to_thread(process.wait, 30)
        output = process.stdout.read().decode()  # type: ignore[union-attr]
        assert exit_code == 0, output
        assert time.monotonic() - terminated_at < 15

        stored = [orjson.loads(r.value)["event_id"] for r in await read_topics(settings)]
        sent = [e["event_id"] for batch in slow_batches + big_batches for e in batch]
        assert sorted(stored) == sorted(sent)
