"""`chimera demo`: the system on one machine with a simulated pool, until Ctrl-C.

The services that exist run as child processes (`chimera.services`); a
simulated pool posts every second's events to `POST /v1/events` over HTTP
with its own API key, as pool nodes do; a view follows the event topics
through a consumer group and the REST API's pool figures, and prints them
beside the simulation's own truth.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from chimera.devstack.config import DevStackConfig, DevStackError
from chimera.devstack.processes import port_open
from chimera.rules import load_pack, read_pack
from chimera.services import ServiceProcess, runnable_services
from chimera.simulator import SimulatedPool
from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.config import IngestSettings
from shared.db.pool import connect, create_pool
from shared.events import Event, decode_event
from shared.http.auth import Scope
from shared.kafka.consumer import BatchConsumer
from shared.kafka.deadletter import DeadLetterProducer, decode_or_dead_letter
from shared.kafka.producer import EventProducer
from shared.kafka.topics import Topic

TICK_MS = 1000
REPORT_EVERY_S = 2.0
READY_TIMEOUT_S = 90.0
DEFAULT_RULE_PACK = Path(__file__).resolve().parents[1] / "deploy" / "rules" / "default.yaml"


@dataclass
class Tally:
    posted: int = 0
    refused: int = 0
    consumed: Counter[str] = field(default_factory=Counter)
    pool_stats: dict[str, Any] | None = None

    def count(self, events: list[Event]) -> None:
        for event in events:
            self.consumed[event.type] += 1
            if event.type == "share":
                self.consumed[f"share:{event.status}"] += 1


async def _demo_key(settings: IngestSettings) -> str:
    conn = await connect(settings)
    try:
        _, plaintext = await ApiKeyStore(conn).create(
            f"demo-{time.strftime('%Y%m%d-%H%M%S')}", {Scope.INGEST, Scope.READ}
        )
    finally:
        await conn.close()
    return plaintext


async def _wait_ready(client: httpx.AsyncClient, services: list[ServiceProcess]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for service in services:
            if service.returncode is not None:
                raise DevStackError(f"{service.name} exited with {service.returncode}",
                                    f"see {service.log_path}")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise DevStackError(f"the API was not ready within {READY_TIMEOUT_S:.0f}s",
                        f"see {services[0].log_path}")


async def _simulate(pool: SimulatedPool, client: httpx.AsyncClient, consumer: BatchConsumer,
                    tally: Tally) -> None:
    # The view reads from "latest": let it join its group and resolve its positions first.
    while not consumer.assignment():
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)
    next_ms = int(time.time() * 1000)
    events = pool.connect_events(next_ms)
    while True:
        response = await client.post("/v1/events", content=orjson.dumps(events),
                                     headers={"Content-Type": "application/json"})
        if response.status_code == 202:
            tally.posted += len(events)
        else:
            # A real pool node would retry; the demo just shows it.
            tally.refused += len(events)
        next_ms += TICK_MS
        await asyncio.sleep(max(0.0, next_ms / 1000 - time.time()))
        events = pool.tick(next_ms - TICK_MS, TICK_MS)


async def _view(consumer: BatchConsumer, dead_letters: DeadLetterProducer, tally: Tally) -> None:
    async for batch in consumer.batches():
        tally.count(await decode_or_dead_letter(batch, decode_event, dead_letters))
        await consumer.commit(batch)


async def _follow_api(client: httpx.AsyncClient, tally: Tally) -> None:
    while True:
        response = await client.get("/api/pool/stats", params={"pool": "main"})
        if response.status_code == 200:
            tally.pool_stats = response.json()
        await asyncio.sleep(REPORT_EVERY_S)


def _hashrate(value: object) -> str:
    return f"{float(value) / 1e15:6.2f} PH/s" if isinstance(value, int | float) else "   -   "


async def _report(pool: SimulatedPool, tally: Tally, dead_letters: DeadLetterProducer) -> None:
    previous = 0
    while True:
        await asyncio.sleep(REPORT_EVERY_S)
        shares = max(1, tally.consumed["share"])
        rate = (tally.consumed["share"] - previous) / REPORT_EVERY_S
        previous = tally.consumed["share"]
        line = (
            f"{time.strftime('%H:%M:%S')}  posted {tally.posted:>7} (refused {tally.refused})  "
            f"in Kafka: shares {tally.consumed['share']:>7} ({rate:5.1f}/s, "
            f"accepted {100 * tally.consumed['share:accepted'] / shares:5.1f}%)  "
            f"blocks {tally.consumed['block']}  miner events {tally.consumed['miner']}  "
            f"dead letters {dead_letters.sent}"
        )
        stats = tally.pool_stats
        if stats is not None:
            hashrate = stats.get("hashrate", {})
            line += (
                f"\n          API /api/pool/stats: hashrate 1m {_hashrate(hashrate.get('1m'))}, "
                f"5m {_hashrate(hashrate.get('5m'))} (simulated {_hashrate(pool.pool_hashrate_hs)}), "
                f"active workers {stats.get('active_workers')}/{len(pool.workers)}, "
                f"blocks {stats.get('blocks_found')}"
            )
        print(line, flush=True)


async def _load_default_rules(settings: IngestSettings) -> str:
    pool = await create_pool(settings)
    try:
        report = await load_pack(pool, read_pack(DEFAULT_RULE_PACK))
    finally:
        await pool.close()
    if report.refusals:
        raise DevStackError(f"the default rule pack is refused: {report.refusals[0]}", "fix deploy/rules/")
    return report.summary()


async def run_demo(settings: IngestSettings) -> None:
    if port_open(settings.http_port, settings.http_host):
        raise DevStackError(f"port {settings.http_port} is taken, so the API cannot listen on it",
                            "stop what holds it, or set HTTP_PORT")
    key = await _demo_key(settings)
    print(f"alert rules (deploy/rules/default.yaml): {await _load_default_rules(settings)}")
    log_dir = DevStackConfig.from_env().state_dir / "logs"
    services = [ServiceProcess(module, log_dir) for module in runnable_services()]
    pool = SimulatedPool(seed=int(time.time()))
    tally = Tally()
    base_url = f"http://{settings.http_host}:{settings.http_port}"
    producer = EventProducer(settings, client_id="chimera-demo-view")
    consumer = BatchConsumer(
        settings, [Topic.SHARES, Topic.BLOCKS, Topic.MINERS],
        group_id=f"chimera-demo-view-{uuid.uuid4().hex[:8]}", auto_offset_reset="latest",
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        try:
            for service in services:
                await service.start()
            await _wait_ready(client, services)
            print(f"services: {', '.join(s.name for s in services)} (logs in {log_dir})")
            print(f"API: {base_url}  (docs at {base_url}/docs; a key with ingest,read scopes:)")
            print(f"  export CHIMERA_API_KEY={key}")
            miners = len({w.miner for w in pool.workers})
            print(f"simulated pool: {miners} miners, {len(pool.workers)} workers, "
                  f"{pool.pool_hashrate_hs / 1e15:.2f} PH/s; Ctrl-C to stop", flush=True)
            await producer.start()
            await consumer.start()
            dead_letters = DeadLetterProducer(producer, settings)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(_simulate(pool, client, consumer, tally), name="simulated-pool")
                tasks.create_task(_view(consumer, dead_letters, tally), name="kafka-view")
                tasks.create_task(_follow_api(client, tally), name="api-view")
                tasks.create_task(_report(pool, tally, dead_letters), name="report")
        finally:
            await consumer.stop()
            await producer.stop()
            for service in reversed(services):
                await service.stop()
