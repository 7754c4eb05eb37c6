"""A live ingest service: `python -m services.ingest` as a real process on the real broker and database."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from services.ingest.config import IngestSettings
from tests.conftest import Endpoints


@dataclass(frozen=True)
class LiveService:
    base_url: str
    token: str
    pid: int
    port: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _chimera(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "chimera.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _delete_topics(env: dict[str, str]) -> None:
    from tests.integration.ingest.conftest import delete_topics

    settings = IngestSettings(
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_topic_prefix=env["KAFKA_TOPIC_PREFIX"],
    )
    # In a thread of its own: this test is synchronous, but the session's event loop may exist.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, delete_topics(settings)).result(timeout=60)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, and SIGKILL if it is still there after `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def live_service_env() -> dict[str, str]:
    """Settings a test module adds to the live service's environment (override to tune)."""
    return {}


@pytest.fixture
def live_service(endpoints: Endpoints, topic_prefix: str, db_schema: str,
                 live_service_env: dict[str, str]) -> Iterator[LiveService]:
    port = _free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_TOPIC_PARTITIONS": "3",
        "DATABASE_URL": endpoints.database_url,
        "DATABASE_SCHEMA": db_schema,
        "HTTP_PORT": str(port),
        # The fuzzer is one fast client; the rate limit has its own tests.
        "RATE_LIMIT_PER_SECOND": "100000",
        "LOG_LEVEL": "WARNING",
        **live_service_env,
    }
    _chimera(env, "migrate")
    _chimera(env, "topics")
    token = _chimera(env, "keys", "create", "--scopes", "ingest,read,admin", "--name", "fuzz")
    token = token.strip().splitlines()[-1]
    process = subprocess.Popen([sys.executable, "-m", "services.ingest"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.1)
        yield LiveService(base_url, token, process.pid, port)
    finally:
        stop_process(process, timeout_s=30)
        _delete_topics(env)
