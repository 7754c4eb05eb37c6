"""The faust services (the alerter, the notifier) answer /readyz once their worker is ready, and
stop on SIGTERM, promptly and with exit 0.

faust's Worker installs its own signal handlers; left alone they replace the
service's, the worker stops itself and the service waits forever for a
signal it already had. shared/kafka/faust_app.py keeps the signals the service's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from shared.db.migrate import migrate_database
from shared.kafka.topics import ensure_topics
from shared.settings import ServiceSettings
from tests.conftest import Endpoints
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _readyz(port: int) -> int | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
    except httpx.TransportError:
        return None


@pytest.mark.parametrize("service", ["alerter", "notifier"])
async def test_sigterm_stops_the_service_with_exit_0(service: str, endpoints: Endpoints, topic_prefix: str,
                                                     db_schema: str, tmp_path: Path) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
                               kafka_topic_prefix=topic_prefix, kafka_topic_partitions=2,
                               database_url=endpoints.database_url, database_schema=db_schema)
    await migrate_database(settings)
    await ensure_topics(settings)
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
           "KAFKA_TOPIC_PREFIX": topic_prefix, "KAFKA_TOPIC_PARTITIONS": "2", "DATABASE_URL": endpoints.database_url,
           "DATABASE_SCHEMA": db_schema, "METRICS_PORT": str(port), "LOG_LEVEL": "INFO",
           f"{service.upper()}_DATA_DIR": str(tmp_path / "faust"),
           "NOTIFIER_SECRET_KEYS": Fernet.generate_key().decode()}
    log = tmp_path / f"{service}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while _readyz(port) != 200:  # 503 until its partitions are assigned and its tables recovered
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert b"Worker ready" in log.read_bytes()
        process.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert process.wait(20) == 0, log.read_text()[-3000:]
        assert time.monotonic() - began < 15
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
