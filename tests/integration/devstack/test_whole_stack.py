"""`chimera dev up|status|down` (what `make up`, `make status`, `make down` run) on a private
stack: its own state folder and ports, beside the stack the other tests use.

One test walks the whole life of a stack, because starting it is the slow part:
Kafka and PostgreSQL alone (`make infra`), then the services with Prometheus,
Alertmanager and the exporters (every scrape target up, the API's PromQL
pass-through answered by that Prometheus), a second `up` that changes nothing,
a killed service started again, and a `down` that leaves no process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from chimera.devstack import stack
from chimera.devstack.config import MONITOR_PORTS, PROJECT_ROOT, DevStackConfig, DevStackError
from chimera.devstack.monitoring import MONITORS
from chimera.devstack.processes import pid_alive, port_open, wait_until
from chimera.devstack.services import BackgroundService
from chimera.services import SERVICES
from tests.integration.conftest import free_port
from tests.integration.deploy import live_checks

pytestmark = pytest.mark.integration

SERVICE_NAMES = [spec.name for spec in SERVICES]
MONITOR_NAMES = [spec.name for spec in MONITORS]


@pytest.fixture
def private_config() -> Iterator[DevStackConfig]:
    state = PROJECT_ROOT / ".chimera" / "test-stacks" / uuid.uuid4().hex[:8]
    config = replace(
        DevStackConfig.from_env(), state_dir=state, kafka_port=free_port(), kafka_controller_port=free_port(),
        postgres_port=free_port(), kafka_heap="512m",
        service_ports={spec.name: free_port() for spec in SERVICES},
        monitor_ports={name: free_port() for name in MONITOR_PORTS}, prometheus_interval="2s",
    )
    yield config
    stack.down(config)
    shutil.rmtree(state, ignore_errors=True)


def _env(config: DevStackConfig) -> dict[str, str]:
    """The environment that points `chimera dev` at the private stack."""
    env = {
        **os.environ,
        "CHIMERA_STATE_DIR": str(config.state_dir),
        "CHIMERA_KAFKA_PORT": str(config.kafka_port),
        "CHIMERA_KAFKA_CONTROLLER_PORT": str(config.kafka_controller_port),
        "CHIMERA_PG_PORT": str(config.postgres_port),
        "CHIMERA_KAFKA_HEAP": config.kafka_heap,
        "CHIMERA_PROMETHEUS_INTERVAL": config.prometheus_interval,
        # The exporter ranks its miners each 5 s, not each minute: their share counters
        # start at that ranking, and the live checks want them counting within seconds.
        "EXPORTER_RANK_INTERVAL_S": "5",
    }
    env.update({f"CHIMERA_{name.upper()}_PORT": str(port) for name, port in config.service_ports.items()})
    env.update({MONITOR_PORTS[name][0]: str(port) for name, port in config.monitor_ports.items()})
    return env


def _chimera_dev(config: DevStackConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chimera.cli", "dev", *args], env=_env(config),
                          capture_output=True, text=True, timeout=300, check=False)


def _pids(config: DevStackConfig) -> dict[str, int | None]:
    return {part.name: part.pid for part in stack.status(config)}


def _read_env_file(config: DevStackConfig) -> dict[str, str]:
    lines = config.endpoints_file.read_text().splitlines()
    return dict(line.removeprefix("export ").split("=", 1) for line in lines)


LEFTOVERS = ("t0123456789ab.pool.shares", "bench0123abcd.pool.shares", "bench_0123abcd.chimera.snapshots")


async def _create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1) for name in names])
    finally:
        await admin.close()


async def _kafka_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


async def test_up_status_restart_and_down(private_config: DevStackConfig) -> None:
    config = private_config

    # `make infra`: Kafka and PostgreSQL, migrated and with their topics; no service.
    infra = _chimera_dev(config, "up", "--infra")
    assert infra.returncode == 0, infra.stderr
    assert "started: kafka, postgres" in infra.stdout
    parts = {part.name: part for part in stack.status(config)}
    assert [name for name, part in parts.items() if part.running] == ["kafka", "postgres"]
    endpoints = _read_env_file(config)
    assert "pool.shares" in await _kafka_topics(endpoints["KAFKA_BOOTSTRAP_SERVERS"])
    conn = await asyncpg.connect(endpoints["DATABASE_URL"])
    try:
        assert await conn.fetchval("SELECT to_regclass('public.alerts') IS NOT NULL")
    finally:
        await conn.close()
    # What the test fixtures call: the same endpoints, nothing started again.
    running = stack.ensure_up(config)
    assert (running.kafka_bootstrap_servers, running.database_url) == (
        endpoints["KAFKA_BOOTSTRAP_SERVERS"], endpoints["DATABASE_URL"])
    infra_pids = (parts["kafka"].pid, parts["postgres"].pid)
    # Topics a killed test or benchmark run left, and one of somebody else's.
    await _create_topics(endpoints["KAFKA_BOOTSTRAP_SERVERS"], [*LEFTOVERS, "keep.me"])
    assert (_pids(config)["kafka"], _pids(config)["postgres"]) == infra_pids

    # `make up`: the four services join, each with its own port, ready when it returns.
    up = _chimera_dev(config, "up")
    assert up.returncode == 0, up.stderr
    assert f"started: {', '.join(SERVICE_NAMES + MONITOR_NAMES)}" in up.stdout
    parts = {part.name: part for part in stack.status(config)}
    assert all(part.running and part.ready for part in parts.values()), parts
    assert (parts["kafka"].pid, parts["postgres"].pid) == infra_pids  # not started again
    assert len({part.pid for part in parts.values()}) == 10
    endpoints = _read_env_file(config)
    api_port = config.service_ports["ingest"]
    assert endpoints["CHIMERA_API_URL"] == f"http://127.0.0.1:{api_port}"
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{endpoints['CHIMERA_API_URL']}/readyz")).status_code == 200
        for name in SERVICE_NAMES:
            url = endpoints[f"CHIMERA_{name.upper()}_METRICS_URL"]
            assert url.startswith(f"http://127.0.0.1:{config.service_ports[name]}/")
            scraped = await client.get(url)
            assert scraped.status_code == 200 and "# TYPE" in scraped.text, (name, scraped.text[:200])
    for name in SERVICE_NAMES:
        log = config.logs_dir / f"{name}.log"
        assert f"starting {name}" in log.read_text()
    await _every_target_up_and_the_pass_through_answers(config, endpoints)

    # `make status` says the same, one line a part with its address.
    status = _chimera_dev(config, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for name, part in parts.items():
        assert any(line.startswith(name) and "running" in line and f"pid {part.pid}" in line
                   and part.address in line for line in status.stdout.splitlines()), status.stdout

    # A second `make up` changes nothing and says so.
    pids = _pids(config)
    again = _chimera_dev(config, "up")
    assert again.returncode == 0, again.stderr
    assert "everything was running already" in again.stdout
    assert _pids(config) == pids
    # A broker that was running may serve runs in progress: their topics stay.
    assert set(LEFTOVERS) <= set(await _kafka_topics(endpoints["KAFKA_BOOTSTRAP_SERVERS"]))

    # A service that died is started again by `make up`; the others are left alone.
    dead = pids["alerter"]
    assert dead is not None
    os.kill(dead, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(dead), 10)
    stopped = _chimera_dev(config, "status")
    assert stopped.returncode == 3
    assert any(line.startswith("alerter") and "stopped" in line for line in stopped.stdout.splitlines())
    restarted = _chimera_dev(config, "up")
    assert restarted.returncode == 0, restarted.stderr
    assert "started: alerter" in restarted.stdout
    after = _pids(config)
    assert after["alerter"] not in (None, dead)
    assert {k: v for k, v in after.items() if k != "alerter"} == {k: v for k, v in pids.items() if k != "alerter"}

    # `make down`: nothing of it runs any more, nothing listens, nothing is left to find.
    down = _chimera_dev(config, "down")
    assert down.returncode == 0, down.stderr
    assert f"stopped: {', '.join([*reversed(MONITOR_NAMES), *SERVICE_NAMES])}, kafka, postgres" in down.stdout
    every_pid = [pid for pid in (*after.values(), dead) if pid is not None]
    assert len(every_pid) == 11
    assert [pid for pid in every_pid if pid_alive(pid)] == []
    ports = [config.kafka_port, config.postgres_port, *config.service_ports.values(), *config.monitor_ports.values()]
    assert [port for port in ports if port_open(port)] == []
    assert all(not part.running for part in stack.status(config))
    assert not config.endpoints_file.exists()
    assert list(config.run_dir.iterdir()) == []
    assert "nothing was running" in _chimera_dev(config, "down").stdout

    # A broker `up` starts serves no run yet: what killed runs left goes, the rest stays.
    infra = _chimera_dev(config, "up", "--infra")
    assert infra.returncode == 0, infra.stderr
    assert f"deleted {len(LEFTOVERS)} topics left by killed test or benchmark runs" in infra.stdout
    bootstrap = _read_env_file(config)["KAFKA_BOOTSTRAP_SERVERS"]
    topics = set(await _kafka_topics(bootstrap))
    for _ in range(100):  # a deletion reaches the metadata a moment after its answer
        if not topics & set(LEFTOVERS):
            break
        await asyncio.sleep(0.1)
        topics = set(await _kafka_topics(bootstrap))
    assert "keep.me" in topics and "pool.shares" in topics
    assert not topics & set(LEFTOVERS)
    assert _chimera_dev(config, "down").returncode == 0


async def _every_target_up_and_the_pass_through_answers(config: DevStackConfig, endpoints: dict[str, str]) -> None:
    """Prometheus scrapes every target of the project's configuration, rendered for this stack,
    and the API's /api/query asks that Prometheus."""
    prometheus = endpoints["PROMETHEUS_URL"]
    assert prometheus == f"http://127.0.0.1:{config.monitor_ports['prometheus']}"
    async with httpx.AsyncClient(timeout=10) as client:
        async def targets() -> dict[str, str]:
            answer = (await client.get(f"{prometheus}/api/v1/targets")).json()
            return {t["labels"]["job"]: t["health"] for t in answer["data"]["activeTargets"]}

        for _ in range(120):  # the first scrape of each comes within one interval (15 s)
            health = await targets()
            if health and all(state == "up" for state in health.values()):
                break
            await asyncio.sleep(0.5)
        assert set(health) == {"chimera-ingest", "chimera-aggregator", "chimera-alerter", "chimera-notifier",
                               "postgres", "node", "prometheus"}, health
        assert all(state == "up" for state in health.values()), health
        for _ in range(150):  # each group's first evaluation comes within its interval (up to 30 s)
            groups = (await client.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
            health = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
            if health and "unknown" not in health.values():
                break
            await asyncio.sleep(0.5)
        assert len(health) > 40 and set(health.values()) == {"ok"}, health
        managers = (await client.get(f"{prometheus}/api/v1/alertmanagers")).json()["data"]["activeAlertmanagers"]
        assert [m["url"] for m in managers] == [
            f"http://127.0.0.1:{config.monitor_ports['alertmanager']}/api/v2/alerts"]
        key = live_checks.chimera_cli({**_env(config), **endpoints}, "keys", "create", "--scopes", "read",
                                      "--name", "whole-stack")
        answer = await client.get(f"{endpoints['CHIMERA_API_URL']}/api/query", params={"query": "up"},
                                  headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        assert "chimera-aggregator" in answer.text

    # Live data: every recording rule and every dashboard panel's PromQL returns some.
    await live_checks.drive({**_env(config), **endpoints}, seconds=40)
    empty_rules: list[str] = []
    empty_panels: list[tuple[str, str]] = []
    for _ in range(60):  # the rule groups evaluate every 15-30 s
        empty_rules = await live_checks.empty_recording_rules(prometheus)
        empty_panels = await live_checks.empty_panel_queries(prometheus)
        if not empty_rules and not empty_panels:
            break
        await asyncio.sleep(1)
    assert empty_rules == [], empty_rules
    assert empty_panels == [], empty_panels


def test_a_service_port_taken_is_reported(private_config: DevStackConfig) -> None:
    service = BackgroundService(SERVICES[2], private_config)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", service.port))
        squatter.listen()
        with pytest.raises(DevStackError) as caught:
            service.start({})
    assert f"port {service.port} is taken" in str(caught.value)
    assert "CHIMERA_ALERTER_PORT" in caught.value.hint
    assert service.pid() is None
