"""Helpers of bench/e2e_bench.py: the four services as processes of a run's own (topic prefix,
schema, ports, data folder), their /metrics, their memory, and a steady share load to Kafka."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run_state import drop_run_state  # noqa: E402  (this folder)

from services.aggregator.domain.liveness import Liveness  # noqa: E402
from shared.db.migrate import migrate_database  # noqa: E402
from shared.kafka.options import client_options  # noqa: E402
from shared.kafka.producer import EventProducer, OutgoingRecord  # noqa: E402
from shared.kafka.topics import Topic, ensure_topics, topic_name  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

SERVICES = ("ingest", "aggregator", "alerter", "notifier")
PORT_VARIABLES = ("HTTP_PORT", "METRICS_PORT")


BEGAN = time.perf_counter()


def progress(text: str) -> None:
    print(f".. {time.perf_counter() - BEGAN:5.0f} s: {text}", flush=True)


async def until(check: Any, what: str, timeout_s: float, poll_s: float = 0.1) -> Any:
    """What `await check()` returns once it is truthy (RuntimeError after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while not (found := await check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out ({timeout_s:.0f} s) waiting for {what}")
        await asyncio.sleep(poll_s)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p99/max (nearest rank) of `values`, rounded; NaN when there are none."""
    if not values:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}
    ordered = sorted(values)
    rank = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {"p50": round(rank(0.5), 2), "p99": round(rank(0.99), 2), "max": round(ordered[-1], 2),
            "n": len(ordered)}


def parse_sample(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of the first sample `name{...}` of a Prometheus exposition whose labels include `labels`."""
    want = [f'{k}="{v}"' for k, v in (labels or {}).items()]
    for line in text.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
            head, _, value = line.rpartition(" ")
            if all(w in head for w in want):
                return float(value)
    return None


class Stack:
    """One run's services: fresh prefix, schema, ports and data folder; everything removed by `close()`."""

    def __init__(self, partitions: int, service_env: dict[str, dict[str, str]]) -> None:
        run = uuid.uuid4().hex[:8]
        self.prefix, self.schema = f"e2ebench{run}.", f"e2ebench_{run}"
        self.data = Path(tempfile.mkdtemp(prefix=f"e2ebench-{run}-"))
        self.settings = ServiceSettings(
            kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            kafka_topic_prefix=self.prefix, kafka_topic_partitions=partitions,
            database_url=os.environ.get("DATABASE_URL", "postgresql://chimera@127.0.0.1:5432/chimera"),
            database_schema=self.schema)
        self.ports = {name: free_port() for name in SERVICES}
        self.service_env = service_env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.prepared = False

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    async def prepare(self, extra_topics: list[str]) -> None:
        self.prepared = True  # from here on close() drops whatever was made
        await migrate_database(self.settings)
        await ensure_topics(self.settings)
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(**client_options(self.settings))
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic_name(self.settings, t), 1, 1) for t in extra_topics])
        finally:
            await admin.close()

    def environment(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in PORT_VARIABLES}
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
            "DATABASE_URL": self.settings.database_url, "DATABASE_SCHEMA": self.schema,
            "KAFKA_TOPIC_PREFIX": self.prefix, "KAFKA_TOPIC_PARTITIONS": str(self.settings.kafka_topic_partitions),
            "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
            "HTTP_PORT" if name == "ingest" else "METRICS_PORT": str(self.ports[name]),
        })
        if name in ("alerter", "notifier"):
            env[f"{name.upper()}_DATA_DIR"] = str(self.data / name)
        env.update(self.service_env.get("all", {}))
        env.update(self.service_env.get(name, {}))
        return env

    def start(self, name: str) -> None:
        with (self.data / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=self.environment(name),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join((self.data / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def get(self, name: str, path: str, timeout_s: float = 5.0) -> tuple[int, str]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session, \
                session.get(self.url(name, path)) as resp:
            return resp.status, await resp.text()

    async def wait_ready(self, names: list[str], timeout_s: float = 120.0) -> float:
        began, waiting = time.perf_counter(), list(names)
        while waiting:
            for name in list(waiting):
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited ({self.processes[name].returncode}):\n{self.log_tail(name)}")
                try:
                    if (await self.get(name, "/readyz", 2.0))[0] == 200:
                        waiting.remove(name)
                except (aiohttp.ClientError, TimeoutError):
                    pass
            if waiting and time.perf_counter() - began > timeout_s:
                raise RuntimeError(f"not ready in {timeout_s:.0f}s: {waiting}\n"
                                   + "\n".join(self.log_tail(n) for n in waiting))
            await asyncio.sleep(0.25)
        return time.perf_counter() - began

    def memory_mib(self, name: str) -> dict[str, float]:
        """VmRSS and VmHWM of the service's process (and of its children, summed, if it has any)."""
        pid = self.processes[name].pid
        pids = [pid, *_children(pid)]
        out = {"vm_rss_mib": 0.0, "vm_hwm_mib": 0.0, "processes": len(pids)}
        for p in pids:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                field, _, rest = line.partition(":")
                if field in ("VmRSS", "VmHWM"):
                    out[f"{field.lower()[:2]}_{field[2:].lower()}_mib"] += round(int(rest.split()[0]) / 1024, 1)
        return out

    def died(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is not None]

    async def close(self) -> None:
        """SIGTERM to every service's process group, SIGKILL after 30 s; then drop topics, schema, folder."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        try:
            if self.prepared:
                conn = await asyncpg.connect(self.settings.database_url)
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')  # so the DROP cannot fail
                await drop_run_state(self.settings, conn, [self.schema])
        finally:
            shutil.rmtree(self.data, ignore_errors=True)
            for stray in ROOT.glob(f"{self.prefix}*"):  # a faust folder made in the working directory
                shutil.rmtree(stray, ignore_errors=True)


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    kids = [int(k) for k in found]
    return kids + [g for k in kids for g in _children(k)]


def share(run: str, n: int, miner: str, worker: str, ts_ms: int) -> bytes:
    return orjson.dumps({"event_id": f"{run}-{n}", "type": "share", "ts": ts_ms, "pool": "main", "node": "n1",
                         "miner": miner, "worker": worker, "difficulty": 1024.0, "status": "accepted"})


class Load:
    """Shares of `miners` x `per_miner` workers (`m<i>`/`w<j>`) straight to `pool.shares`, keyed by miner
    as the contract says: a backfill of one share each, then a live round-robin at `rate` shares/s."""

    def __init__(self, settings: ServiceSettings, miners: int, per_miner: int, rate: float) -> None:
        self.topic = topic_name(settings, Topic.SHARES)
        self.producer = EventProducer(settings, client_id="e2e-bench-load", linger_ms=5, max_batch_size=1 << 20)
        self.miners, self.per_miner, self.rate = miners, per_miner, rate
        self.workers = miners * per_miner
        self.run, self.sent, self.cursor = uuid.uuid4().hex[:8], 0, 0
        self.live_sent, self.live_s = 0, 0.0
        self._task: asyncio.Task[None] | None = None

    def _records(self, count: int, ts_ms: int) -> list[OutgoingRecord]:
        out = []
        for _ in range(count):
            i = self.cursor % self.workers
            miner = f"m{i // self.per_miner}"
            self.sent += 1
            out.append(OutgoingRecord(self.topic, miner.encode(),
                                      share(self.run, self.sent, miner, f"w{i % self.per_miner}", ts_ms)))
            self.cursor += 1
        return out

    async def send(self, miner: str, worker: str, ts_ms: int | None = None) -> int:
        """One share of another worker (a probe), on the same producer; returns its ts_ms."""
        ts_ms = ts_ms or time.time_ns() // 1_000_000
        self.sent += 1
        await self.producer.send_batch([OutgoingRecord(self.topic, miner.encode(),
                                                       share(self.run, self.sent, miner, worker, ts_ms))])
        return ts_ms

    async def backfill(self) -> None:
        while self.cursor < self.workers:
            chunk = min(10_000, self.workers - self.cursor)
            await self.producer.send_batch(self._records(chunk, time.time_ns() // 1_000_000), timeout_s=60)

    def start_live(self) -> None:
        self._task = asyncio.create_task(self._live())

    async def _live(self) -> None:
        began = time.perf_counter()
        while True:
            due = int((time.perf_counter() - began) * self.rate) - self.live_sent
            if due > 0:
                await self.producer.send_batch(self._records(due, time.time_ns() // 1_000_000), timeout_s=60)
                self.live_sent += due
            self.live_s = time.perf_counter() - began
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.producer.stop()
        if self._task is not None and not self._task.cancelled() and self._task.exception():
            raise RuntimeError("the live load failed") from self._task.exception()


def offline_at_ms(shares: list[int], floor_ms: int, ceiling_ms: int = 30 * 60_000) -> int:
    """When the aggregator's liveness declares a worker with these shares (event times, ms; all
    accepted, one difficulty) offline: its own `Liveness`, fed them as the aggregator folds them
    (per worker minute: the minute's start, shares, last share, accepted, difficulty)."""
    liveness = Liveness(floor_ms=floor_ms, ceiling_ms=ceiling_ms)
    key = ("main", "probe", "w")
    minutes: dict[int, list[int]] = {}
    for ts in shares:
        minutes.setdefault(ts - ts % 60_000, []).append(ts)
    for minute, stamps in sorted(minutes.items()):
        liveness.observe_minute(key, minute, len(stamps), max(stamps), len(stamps), 1024.0 * len(stamps))
    deadline = liveness.offline_deadline_ms(key)
    assert deadline is not None
    return deadline


async def round_trips(settings: ServiceSettings, topic: str, n: int) -> dict[str, float]:
    """The broker's own latency: n records produced one at a time (EventProducer, acks=all) and
    read back by a plain consumer with the aggregator's consumer defaults; p50/p99 ms."""
    consumer = AIOKafkaConsumer(topic, **client_options(settings), group_id=None, auto_offset_reset="latest")
    producer = EventProducer(settings, client_id="e2e-bench-rtt")
    await consumer.start()
    await producer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        await consumer.seek_to_end()
        latencies = []
        for k in range(n):
            sent = time.perf_counter()
            await producer.send_batch([OutgoingRecord(topic, b"k", str(k).encode())])
            while (await consumer.getone()).value != str(k).encode():
                pass
            latencies.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(random.uniform(0.05, 0.15))
    finally:
        await producer.stop()
        await consumer.stop()
    return percentiles(latencies)
