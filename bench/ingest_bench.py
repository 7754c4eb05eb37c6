"""Throughput of POST /v1/events against the real service and broker (a benchmark, not a test).

    source .chimera/stack.env && .venv/bin/python bench/ingest_bench.py [--clients 8] [--duration 20]

Starts `python -m services.ingest` as its own process (real uvicorn, real
Kafka, real PostgreSQL for the keys) on a private topic prefix and schema,
then N concurrent clients send 1,000-event share batches for the duration
and the run reports events/s and p50/p99 request latency. As a same-run
baseline it sends the same batches, already decoded, straight through
`EventProducer.send_events` with the same concurrency, so the HTTP figure
can be read as a fraction of what the Kafka path alone does on this machine.
`--producer-impl` sets the service's KAFKA_PRODUCER_IMPL, `--baseline-impl`
the baseline's (shared/kafka/producer_choice.py; both aiokafka by default).
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

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run_state import drop_run_state  # noqa: E402  (this folder)

from services.ingest.adapters.keys import ApiKeyStore  # noqa: E402
from services.ingest.config import IngestSettings  # noqa: E402
from shared.db.migrate import migrate_database  # noqa: E402
from shared.db.pool import connect  # noqa: E402
from shared.events import decode_batch  # noqa: E402
from shared.kafka.producer_choice import PRODUCER_IMPLS, ProducerImpl, create_producer  # noqa: E402
from shared.kafka.topics import ensure_topics  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_batches(count: int, size: int) -> list[bytes]:
    now_ms = time.time_ns() // 1_000_000
    run = uuid.uuid4().hex[:8]
    batches = []
    for b in range(count):
        batches.append(orjson.dumps([
            {"event_id": f"{run}-{b}-{i}", "type": "share", "ts": now_ms - i, "pool": "main",
             "node": f"node-{b % 4}", "miner": f"bc1qminer{(b * size + i) % 5000}",
             "worker": f"rig{i % 16}", "difficulty": 65536.0 + i,
             "status": "accepted" if i % 50 else "rejected"}
            for i in range(size)
        ]))
    return batches


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def http_run(base_url: str, token: str, batches: list[bytes], clients: int,
                   duration_s: float, warmup_s: float) -> tuple[int, list[float], float, dict[int, int]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies_s: list[float] = []
    statuses: dict[int, int] = {}
    accepted = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        measuring_from = time.perf_counter() + warmup_s
        until = measuring_from + duration_s

        async def worker(offset: int) -> None:
            nonlocal accepted
            i = offset
            while True:
                started = time.perf_counter()
                if started >= until:
                    return
                response = await client.post("/v1/events", content=batches[i % len(batches)],
                                             headers=headers)
                ended = time.perf_counter()
                i += clients
                if started >= measuring_from:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    latencies_s.append(ended - started)
                    if response.status_code == 202:
                        accepted += response.json()["accepted"]

        begun = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(clients)))
        elapsed_s = time.perf_counter() - max(begun + warmup_s, measuring_from)
    return accepted, latencies_s, elapsed_s, statuses


async def producer_run(settings: IngestSettings, batches: list[bytes], clients: int,
                       duration_s: float, impl: ProducerImpl = "aiokafka") -> tuple[int, float]:
    decoded = [decode_batch(raw) for raw in batches]
    producer = create_producer(settings, impl, client_id="bench-baseline")
    await producer.start()
    sent = 0
    try:
        await producer.send_events(decoded[0])  # warm-up: metadata, connections
        until = time.perf_counter() + duration_s

        async def worker(offset: int) -> None:
            nonlocal sent
            i = offset
            while time.perf_counter() < until:
                await producer.send_events(decoded[i % len(decoded)])
                sent += len(decoded[i % len(decoded)])
                i += clients

        begun = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(clients)))
        return sent, time.perf_counter() - begun
    finally:
        await producer.stop()


async def main(args: argparse.Namespace) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    settings = IngestSettings(
        kafka_topic_prefix=f"{schema}.", database_schema=schema, http_port=free_port(),
        rate_limit_per_second=1e6,
    )
    admin_conn = await asyncpg.connect(settings.database_url)
    await admin_conn.execute(f'CREATE SCHEMA "{schema}"')
    process: subprocess.Popen[bytes] | None = None
    try:
        await migrate_database(settings)
        await ensure_topics(settings)
        conn = await connect(settings)
        try:
            _, token = await ApiKeyStore(conn).create("bench", {"ingest"})
        finally:
            await conn.close()
        env = {**os.environ, "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
               "DATABASE_SCHEMA": schema, "HTTP_PORT": str(settings.http_port),
               "RATE_LIMIT_PER_SECOND": "1000000", "LOG_LEVEL": "WARNING",
               "KAFKA_PRODUCER_IMPL": args.producer_impl}
        process = subprocess.Popen([sys.executable, "-m", "services.ingest"], env=env, cwd=ROOT)
        base_url = f"http://127.0.0.1:{settings.http_port}"
        async with httpx.AsyncClient(base_url=base_url) as probe:
            for _ in range(300):
                try:
                    if (await probe.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("the service did not become ready")

        batches = make_batches(64, args.batch)
        print(f"service producer: {args.producer_impl}; "
              f"{args.clients} clients, {args.batch}-event batches "
              f"({len(batches[0]) / 1024:.0f} KiB each), {args.duration:g}s after {args.warmup:g}s warm-up")
        accepted, latencies_s, elapsed_s, statuses = await http_run(
            base_url, token, batches, args.clients, args.duration, args.warmup)
        http_rate = accepted / elapsed_s
        print(f"HTTP POST /v1/events: {http_rate:,.0f} events/s ({len(latencies_s)} requests, "
              f"statuses {statuses}); latency p50 {percentile(latencies_s, 0.5) * 1000:.1f} ms, "
              f"p99 {percentile(latencies_s, 0.99) * 1000:.1f} ms, "
              f"mean {statistics.fmean(latencies_s) * 1000:.1f} ms")
        process.terminate()
        process.wait(timeout=30)
        process = None

        sent, baseline_s = await producer_run(settings, batches, args.clients, args.baseline_duration,
                                              args.baseline_impl)
        baseline_rate = sent / baseline_s
        print(f"baseline send_events ({args.baseline_impl}): {baseline_rate:,.0f} events/s "
              f"({args.baseline_duration:g}s, same batches, same concurrency)")
        print(f"HTTP / baseline: {http_rate / baseline_rate:.2f}")
        if args.json:
            print(json.dumps({"clients": args.clients, "batch": args.batch, "duration_s": args.duration,
                              "producer_impl": args.producer_impl, "baseline_impl": args.baseline_impl,
                              "http_events_per_s": http_rate, "requests": len(latencies_s),
                              "p50_ms": percentile(latencies_s, 0.5) * 1000,
                              "p99_ms": percentile(latencies_s, 0.99) * 1000,
                              "baseline_events_per_s": baseline_rate}), flush=True)
    finally:
        if process is not None:
            process.kill()
            process.wait()
        await drop_run_state(settings, admin_conn, [schema])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--baseline-duration", type=float, default=10.0)
    parser.add_argument("--producer-impl", choices=PRODUCER_IMPLS, default="aiokafka-batch",
                        help="KAFKA_PRODUCER_IMPL of the service under test (the ingest's default)")
    parser.add_argument("--baseline-impl", choices=PRODUCER_IMPLS, default="aiokafka-batch",
                        help="producer straight to Kafka that the HTTP figure is divided by")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures (bench/run_all.py)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
