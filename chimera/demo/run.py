"""`chimera demo`: the system on one machine with a simulated pool, until Ctrl-C.

In order: an API key with every scope, the default rule pack, the four
services as child processes (`chimera.services`), a loopback webhook
receiver and an alert channel delivering to it (signed), then the simulated
pool of `chimera.simulate` posting to `POST /v1/events` in real time with the
demo scenario (a worker offline, a miner at half its hashrate, within the
first minutes), and a live view (`view.py`) of what the system makes of it.
Ctrl-C stops what the demo started, in reverse order, and removes its channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from chimera.devstack.config import DevStackConfig, DevStackError
from chimera.devstack.monitoring import start_monitoring, stop_monitoring
from chimera.devstack.processes import port_open
from chimera.devstack.stack import ingest_key
from chimera.rules import load_pack, read_pack
from chimera.services import SERVICES, ServiceProcess, runnable_services
from chimera.simulate import HttpSink, PoolConfig, RealTime, RunReport, Scenario, SimulatedPool, run
from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.config import IngestSettings
from shared.db.pool import connect, create_pool
from shared.http.auth import Scope

from .follow import follow_alerts, follow_lag, follow_pool
from .receiver import WebhookReceiver
from .view import DemoState, render

READY_TIMEOUT_S: Final = 120.0
PROJECT: Final = Path(__file__).resolve().parents[2]
DEFAULT_RULE_PACK: Final = PROJECT / "deploy" / "rules" / "default.yaml"
DEMO_SCENARIO: Final = PROJECT / "deploy" / "scenarios" / "demo.yaml"
# The services' own /metrics listeners (the ingest serves its /metrics on the API's port).
DEMO_SEED: Final = 1
METRICS_PORTS: Final = {spec.name: spec.default_port for spec in SERVICES if spec.port_variable == "METRICS_PORT"}


async def _demo_key(settings: IngestSettings) -> str:
    conn = await connect(settings)
    try:
        _, plaintext = await ApiKeyStore(conn).create(
            f"demo-{time.strftime('%Y%m%d-%H%M%S')}", {Scope.INGEST, Scope.READ, Scope.ADMIN})
    finally:
        await conn.close()
    return plaintext


async def _load_default_rules(settings: IngestSettings) -> str:
    pool = await create_pool(settings)
    try:
        report = await load_pack(pool, read_pack(DEFAULT_RULE_PACK))
    finally:
        await pool.close()
    if report.refusals:
        raise DevStackError(f"the default rule pack is refused: {report.refusals[0]}", "fix deploy/rules/")
    return report.summary()


async def _wait_ready(client: httpx.AsyncClient, services: list[ServiceProcess]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for service in services:
            if service.returncode is not None:
                raise DevStackError(f"{service.name} exited with {service.returncode}", f"see {service.log_path}")
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.5)
    raise DevStackError(f"the API was not ready within {READY_TIMEOUT_S:.0f}s", f"see {services[0].log_path}")


@contextlib.asynccontextmanager
async def _services(log_dir: Path) -> AsyncIterator[list[ServiceProcess]]:
    services = [ServiceProcess(module, log_dir) for module in runnable_services()]
    try:
        for service in services:
            await service.start()
        yield services
    finally:
        for service in reversed(services):
            await service.stop()


@contextlib.asynccontextmanager
async def _channel(client: httpx.AsyncClient, receiver: WebhookReceiver, secret: str) -> AsyncIterator[int]:
    """The demo's alert channel, removed when the demo ends (it points at the demo's receiver)."""
    body = {"name": f"demo-{time.strftime('%Y%m%d-%H%M%S')}", "type": "webhook",
            "config": {"url": receiver.url, "hmac_secret": secret},
            "group_by": ["alertname", "pool", "miner"], "group_wait": "10s", "group_interval": "1m",
            "repeat_interval": "1h"}
    made = await client.post("/api/alert-channels", json=body)
    if made.status_code != 201:
        raise DevStackError(f"the demo's alert channel was refused: {made.status_code} {made.text[:300]}",
                            "is NOTIFIER_ALLOWED_NETWORKS 127.0.0.0/8 (.chimera/stack.env)?")
    channel_id = int(made.json()["id"])
    try:
        yield channel_id
    finally:
        with contextlib.suppress(httpx.HTTPError):
            await client.delete(f"/api/alert-channels/{channel_id}")


def _header(base_url: str, key: str, log_dir: Path) -> Text:
    metrics = ", ".join(f"{name} http://127.0.0.1:{port}/metrics" for name, port in METRICS_PORTS.items())
    return Text(
        f"console {base_url}/ (sign in with the key below)    API {base_url} (docs {base_url}/docs, "
        f"ingest /metrics {base_url}/metrics)\n"
        f"/metrics: {metrics}\n"
        f"key (ingest, read, admin): export CHIMERA_API_KEY={key}\n"
        f"logs: {log_dir}    Ctrl-C stops everything the demo started")


async def _simulate(pool: SimulatedPool, base_url: str, key: str, state: DemoState) -> None:
    def progress(report: RunReport) -> None:
        state.posted = sum(report.events.values())
        state.truth_hashrate_hs = pool.pool_hashrate_hs

    async with HttpSink(base_url, key) as sink:
        state.first_share_ms = int(time.time() * 1000)
        await run(pool, sink, RealTime(), on_span=progress)


async def _show(console: Console, header: Text, state: DemoState) -> None:
    with Live(Group(header, render(state)), console=console, refresh_per_second=2, screen=False) as live:
        while True:
            await asyncio.sleep(1.0)
            live.update(Group(header, render(state)))


async def run_demo(settings: IngestSettings) -> None:
    if port_open(settings.http_port, settings.http_host):
        raise DevStackError(f"port {settings.http_port} is taken, so the API cannot listen on it",
                            "stop what holds it (make down stops the background stack), or set HTTP_PORT")
    console = Console()
    key = await _demo_key(settings)
    console.print(f"alert rules (deploy/rules/default.yaml): {await _load_default_rules(settings)}")
    log_dir = DevStackConfig.from_env().state_dir / "logs"
    base_url = f"http://{settings.http_host}:{settings.http_port}"
    state = DemoState()
    # One seed for every run: a second demo brings back the same miners and workers (their
    # offline alerts from the last run resolve) instead of leaving the last run's to go offline.
    pool = SimulatedPool(PoolConfig(miners=20, scenario=Scenario.load(DEMO_SCENARIO)), seed=DEMO_SEED)
    secret = secrets.token_urlsafe(24)
    receiver = WebhookReceiver(secret, state.notices.append)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(
            base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {key}"}))
        config = DevStackConfig.from_env()
        prometheus = f"http://127.0.0.1:{config.monitor_ports['prometheus']}"
        os.environ["PROMETHEUS_URL"] = prometheus  # the services' PromQL pass-through asks it
        monitors = await asyncio.to_thread(
            start_monitoring, config, database_url=settings.database_url, ingest_url=base_url,
            service_ports=config.service_ports, make_key=lambda: ingest_key(dict(os.environ)))
        stack.callback(stop_monitoring, config, monitors)  # only what this demo started
        console.print(f"Prometheus {prometheus}, Alertmanager http://127.0.0.1:{config.monitor_ports['alertmanager']}")
        services = await stack.enter_async_context(_services(log_dir))
        console.print(f"starting {', '.join(s.name for s in services)} (logs in {log_dir}) ...")
        await _wait_ready(client, services)
        await receiver.start()
        stack.push_async_callback(receiver.stop)
        await stack.enter_async_context(_channel(client, receiver, secret))
        workers = len(pool.workers)
        console.print(f"simulated pool: 20 miners, {workers} workers, {pool.healthy_hashrate_hs / 1e15:.2f} PH/s; "
                      f"scenario {DEMO_SCENARIO.name}: {pool.config.scenario.description}")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(_simulate(pool, base_url, key, state), name="simulated-pool")
            tasks.create_task(follow_pool(settings, state), name="pool-figures")
            tasks.create_task(follow_alerts(client, state), name="alerts")
            tasks.create_task(follow_lag(settings, state), name="consumer-lag")
            tasks.create_task(_show(console, _header(base_url, key, log_dir), state), name="view")
