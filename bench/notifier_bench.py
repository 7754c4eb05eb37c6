"""The notifier against the real broker and database, delivering to a loopback webhook receiver
(a benchmark, not a test).

    source .chimera/stack.env && .venv/bin/python bench/notifier_bench.py [--alerts 2000]
        [--probes 100] [--groups 10000] [--tick-s 0.2] [--quick]

The notifier runs as `python -m services.notifier` (its own process, so its RSS is its own), with
a fresh topic prefix and schema; the receiver runs in this process. Measured in one run:

(0) baseline: a bare aiohttp client POSTing the same Alertmanager v4 payloads to the same
    receiver, 16 at a time: requests/s (the ceiling of any notifier on this machine);
(a) throughput: N firing alerts, each its own group (group_by worker, group_wait 0), on one
    webhook channel: notifications/s from the first record produced to the N-th delivery, and
    its ratio to (0);
(b) latency: P alerts one at a time (a new group each, group_wait 1 s): from the record produced
    to the receiver holding its notification, minus group_wait; p50/p99 (target p99 < 0.5 s);
(c) memory: G alerts in G groups kept open (group_wait 1 h): the notifier's RSS once
    `chimera_notifier_groups` reaches G, against its RSS before (bytes per open group).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run_state import drop_run_state  # noqa: E402  (this folder)

from services.notifier.adapters.channel_store import ChannelSpec, ChannelStore  # noqa: E402
from services.notifier.adapters.secrets import SecretBox  # noqa: E402
from services.notifier.config import NotifierSettings  # noqa: E402
from services.notifier.domain.message_group import AlertView  # noqa: E402
from services.notifier.domain.messages import build_group_message, webhook_payload  # noqa: E402
from shared.db.migrate import migrate_database  # noqa: E402
from shared.db.pool import create_pool  # noqa: E402
from shared.kafka.producer import EventProducer, OutgoingRecord  # noqa: E402
from shared.kafka.topics import Topic, ensure_topics, topic_name  # noqa: E402
from tests.integration.notifier.receivers import HttpReceiver  # noqa: E402


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _record(fingerprint: str, worker: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"fingerprint": fingerprint, "status": "firing", "starts_at": now, "ends_at": None, "fired_at": now,
            "labels": {"alertname": "worker offline", "severity": "warning", "pool": "main", "miner": "m1",
                       "worker": worker},
            "annotations": {"summary": f"worker {worker} offline"}, "severity": "warning",
            "name": "worker offline", "value": 0.0, "threshold": 0.0, "rule_id": 1, "alert_id": None,
            "reason": None}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        run = uuid.uuid4().hex[:8]
        self.metrics_port = _free_port()
        self.settings = NotifierSettings(
            kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            kafka_topic_prefix=f"nbench{run}.", kafka_topic_partitions=args.partitions,
            database_url=os.environ["DATABASE_URL"], database_schema=f"nbench_{run}",
            notifier_allowed_networks=["127.0.0.0/8"], notifier_secret_keys=Fernet.generate_key().decode(),
            notifier_tick_s=args.tick_s, metrics_port=self.metrics_port,
            notifier_data_dir=Path("/tmp") / f"nbench-{run}",
            notifier_rate_limit_per_minute=10_000_000.0, notifier_send_concurrency=32)
        self.process: subprocess.Popen[bytes] | None = None
        self.producer = EventProducer(self.settings, linger_ms=2)
        self.topic = topic_name(self.settings, Topic.ALERTS)

    async def prepare(self) -> None:
        conn = await asyncpg.connect(self.settings.database_url)
        try:
            await conn.execute(f'CREATE SCHEMA "{self.settings.database_schema}"')
        finally:
            await conn.close()
        await migrate_database(self.settings)
        await ensure_topics(self.settings)
        await self.producer.start()

    async def channel(self, name: str, url: str, **timing: Any) -> None:
        pool = await create_pool(self.settings)
        try:
            spec = ChannelSpec(name=name, type="webhook", config={}, secrets={"url": url}, group_by=("worker",),
                               **timing)
            await ChannelStore(pool, SecretBox.from_settings(self.settings)).create(spec)
        finally:
            await pool.close()

    def start(self) -> None:
        env = {**os.environ, "LOG_LEVEL": "WARNING"}
        for name in self.settings.model_fields_set:
            value = getattr(self.settings, name)
            value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            env[name.upper()] = ",".join(value) if isinstance(value, list) else str(value)
        self.log = Path(self.settings.notifier_data_dir).with_suffix(".log")
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen([sys.executable, "-m", "services.notifier"], cwd=ROOT, env=env,
                                            stdout=sink, stderr=subprocess.STDOUT)

    async def metric(self, name: str) -> float | None:
        try:
            async with aiohttp.ClientSession() as session, \
                    session.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as resp:
                text = await resp.text()
        except aiohttp.ClientError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    async def ready(self) -> None:
        deadline = time.monotonic() + 90
        while await self.metric("chimera_notifier_groups") is None:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the notifier did not start"
            await asyncio.sleep(0.2)
        await asyncio.sleep(3.0)  # partitions assigned and the first reload done

    def rss_bytes(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    async def publish(self, records: list[dict[str, Any]]) -> None:
        await self.producer.send_batch(
            [OutgoingRecord(self.topic, r["fingerprint"].encode(), orjson.dumps(r)) for r in records])

    async def close(self) -> None:
        await self.producer.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        await drop_run_state(self.settings, await asyncpg.connect(self.settings.database_url),
                             [self.settings.database_schema])


async def baseline(receiver: HttpReceiver, n: int) -> float:
    view = AlertView.from_record(_record("fp", "w0"))
    body = orjson.dumps(webhook_payload(build_group_message("bench", "g", {"worker": "w0"}, [view], max_alerts=0)))
    slots = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as session:
        async def one() -> None:
            async with slots, session.post(receiver.url("/baseline"), data=body,
                                           headers={"Content-Type": "application/json"}) as resp:
                await resp.read()

        began = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - began)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    bench = Bench(args)
    report: dict[str, Any] = {"alerts": args.alerts, "probes": args.probes, "groups": args.groups}
    async with HttpReceiver() as receiver:
        await bench.prepare()
        try:
            report["baseline_requests_per_s"] = round(await baseline(receiver, args.alerts))
            await bench.channel("throughput", receiver.url("/a"), group_wait_ms=0, group_interval_ms=3_600_000,
                                repeat_interval_ms=86_400_000)
            await bench.channel("latency", receiver.url("/b"), group_wait_ms=1_000, group_interval_ms=3_600_000,
                                repeat_interval_ms=86_400_000, matchers={"miner": "probe"})
            await bench.channel("memory", receiver.url("/c"), group_wait_ms=3_600_000,
                                group_interval_ms=3_600_000, repeat_interval_ms=86_400_000,
                                matchers={"miner": "held"})
            bench.start()
            await bench.ready()
            rss_idle = bench.rss_bytes()

            # (a) throughput
            records = [_record(f"a{i}", f"w{i}") for i in range(args.alerts)]
            began = time.perf_counter()
            await bench.publish(records)
            deadline = time.monotonic() + 300
            while len(receiver.on("/a")) < args.alerts and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            took = time.perf_counter() - began
            report["notifications_per_s"] = round(len(receiver.on("/a")) / took, 1)
            report["ratio_to_baseline"] = round(report["notifications_per_s"] / report["baseline_requests_per_s"], 3)

            # (b) latency beyond group_wait
            latencies = []
            for i in range(args.probes):
                record = _record(f"b{i}", f"p{i}") | {}
                record["labels"] = {**record["labels"], "miner": "probe"}
                sent = time.monotonic()
                await bench.publish([record])
                want = i + 1
                while len(receiver.on("/b")) < want and time.monotonic() - sent < 30:
                    await asyncio.sleep(0.002)
                latencies.append(receiver.on("/b")[i].received_at - sent - 1.0)
            latencies.sort()
            report["latency_beyond_group_wait_s"] = {
                "p50": round(statistics.median(latencies), 4),
                "p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 4),
                "max": round(latencies[-1], 4)}

            # (c) memory with G open groups
            before = await bench.metric("chimera_notifier_groups") or 0.0
            rss_before = bench.rss_bytes()
            held = []
            for i in range(args.groups):
                record = _record(f"c{i}", f"h{i}")
                record["labels"] = {**record["labels"], "miner": "held"}
                held.append(record)
            for start in range(0, len(held), 2_000):
                await bench.publish(held[start:start + 2_000])
            deadline = time.monotonic() + 300
            while (await bench.metric("chimera_notifier_groups") or 0) < before + args.groups:
                assert time.monotonic() < deadline, "groups did not open"
                await asyncio.sleep(0.5)
            rss_after = bench.rss_bytes()
            report["rss_idle_mb"] = round(rss_idle / 2**20, 1)
            report["rss_before_groups_mb"] = round(rss_before / 2**20, 1)
            report["rss_with_groups_mb"] = round(rss_after / 2**20, 1)
            report["bytes_per_open_group"] = round((rss_after - rss_before) / args.groups)
        finally:
            await bench.close()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=2_000)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--tick-s", type=float, default=0.2, help="NOTIFIER_TICK_S (the default: 0.2)")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the bench itself")
    parsed = parser.parse_args()
    if parsed.quick:
        parsed.alerts, parsed.probes, parsed.groups = 200, 10, 500
    print(json.dumps(asyncio.run(main(parsed)), indent=2))
