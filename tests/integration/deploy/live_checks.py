"""Checks of the monitoring against live data from a running stack (issue 13, item 3).

Driven from the whole-stack test (tests/integration/devstack/test_whole_stack.py), which
starts everything once: `drive` makes the stack produce every kind of figure the recording
rules and the dashboards read (the simulator in real time, an alert through Alertmanager to
a channel that cannot be reached, a refused key, a rate-limited key, a poison record), and
`empty_recording_rules` / `empty_panel_queries` say which of them still have no data.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from aiokafka import AIOKafkaProducer

from tests.integration.deploy.grafana_model import (
    SAMPLE_VALUES,
    dashboard_files,
    load_dashboard,
    panel_queries,
    variable_queries,
)

RECORDING_RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "recording_rules.yml"
LIVE_VALUES = {**SAMPLE_VALUES, "miner": "m1"}  # the simulator's miners are m1, m2, ...


def chimera_cli(env: Mapping[str, str], *args: str) -> str:
    """`chimera ARGS` with `env` over this process's environment; its last output line."""
    done = subprocess.run([sys.executable, "-m", "chimera.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1]


async def drive(env: Mapping[str, str], seconds: float) -> None:
    """Everything a recording rule or a panel reads, happening in `seconds` of real time."""
    api, am = env["CHIMERA_API_URL"], env["ALERTMANAGER_URL"]
    key = chimera_cli(env, "keys", "create", "--scopes", "ingest,read,admin", "--name", "live-checks")
    slow = chimera_cli(env, "keys", "create", "--scopes", "read", "--name", "slow", "--rate-limit", "1")
    simulator = subprocess.Popen(
        [sys.executable, "-m", "chimera.cli", "simulate", "--url", api, "--key", key, "--speed", "realtime",
         "--span", f"{int(seconds)}s", "--miners", "6", "--block-every", "20s", "--seed", "13"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=api, timeout=10) as client:
            admin = {"Authorization": f"Bearer {key}"}
            # A channel whose destination answers 404 (the API itself): a failure not worth
            # retrying, so the notifier's failures have a series at once.
            channel = {"name": "answers-404", "type": "webhook", "config": {"url": f"{api}/no-such-hook"},
                       "group_wait": "0s", "group_interval": "1s"}
            made = await client.post("/api/alert-channels", json=channel, headers=admin)
            assert made.status_code == 201, made.text
            async with httpx.AsyncClient(base_url=am, timeout=10) as manager:
                posted = await manager.post("/api/v2/alerts", json=[{
                    "labels": {"alertname": "LiveCheck", "severity": "warning"},
                    "startsAt": (datetime.now(UTC) - timedelta(seconds=5)).isoformat()}])
                assert posted.status_code == 200, posted.text
            # A pool node's own report (the simulator sends one a minute; this run is shorter).
            report = {"host": "stratum-1", "service": "stratum", "cpu_usage": 42.0, "memory_usage": 61.5,
                      "disk_usage": 33.0}
            answer = await client.post("/api/metrics/performance", json=report, headers=admin)
            assert answer.status_code == 202, answer.text
            assert (await client.get("/api/pool/stats", headers={"Authorization": "Bearer nope"})).status_code == 401
            for _ in range(5):  # past its 1/s: rate limited
                await client.get("/api/alert-rules/metrics", headers={"Authorization": f"Bearer {slow}"})
        producer = AIOKafkaProducer(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"])
        await producer.start()
        try:  # a record no pool node would send: dead-lettered by the aggregator
            await producer.send_and_wait("pool.shares", b"not json", key=b"m1")
        finally:
            await producer.stop()
        while simulator.poll() is None:
            await asyncio.sleep(1)
    finally:
        if simulator.poll() is None:
            simulator.kill()
        simulator.wait()


async def _has_data(client: httpx.AsyncClient, prometheus: str, query: str) -> bool:
    answer = (await client.get(f"{prometheus}/api/v1/query", params={"query": query})).json()
    assert answer["status"] == "success", (query, answer)
    return bool(answer["data"]["result"])


def recording_rule_names() -> list[str]:
    groups = yaml.safe_load(RECORDING_RULES.read_text())["groups"]
    return [rule["record"] for group in groups for rule in group["rules"]]


async def empty_recording_rules(prometheus: str) -> list[str]:
    async with httpx.AsyncClient(timeout=10) as client:
        return [name for name in recording_rule_names() if not await _has_data(client, prometheus, name)]


def live_panel_queries() -> list[tuple[str, str]]:
    """(dashboard file/panel title, PromQL) of every Prometheus panel and variable query."""
    out = []
    for path in dashboard_files():
        dashboard = load_dashboard(path)
        for q in panel_queries(dashboard, LIVE_VALUES):
            if q.kind == "prometheus":
                out.append((f"{path.name}/{q.title}", q.query))
        for q in variable_queries(dashboard, LIVE_VALUES):
            if q.kind == "prometheus":
                out.append((f"{path.name}/{q.title}", q.query))
    return out


async def empty_panel_queries(prometheus: str) -> list[tuple[str, str]]:
    async with httpx.AsyncClient(timeout=10) as client:
        empty = []
        for where, query in live_panel_queries():
            if query.startswith("label_values("):
                continue  # a Grafana function, not PromQL: its selector is checked in the panels
            if not await _has_data(client, prometheus, query):
                empty.append((where, query))
        return empty
