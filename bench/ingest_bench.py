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
`--http-loop` and `--fast-checks on|off` set HTTP_LOOP and SHARE_FAST_CHECKS.
`--processes N` starts N ingest processes sharing the port through
SO_REUSEPORT (bench/ingest_reuseport.py; measurement only, the service has
no supervisor).
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
from typing import Any, NamedTuple

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
from shared.events import TOPIC_BY_TYPE, decode_batch, encode_event, record_key  # noqa: E402
from shared.kafka.producer import OutgoingRecord  # noqa: E402
from shared.kafka.producer_choice import PRODUCER_IMPLS, ProducerImpl, create_producer  # noqa: E402
from shared.kafka.topics import ensure_topics, topic_name  # noqa: E402


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
                       duration_s: float, impl: ProducerImpl = "aiokafka",
                       pre_encoded: bool = False) -> tuple[int, float]:
    """Events/s straight to Kafka: `send_events` of decoded events (the models encode them), or with
    `pre_encoded` `send_batch` of records encoded beforehand (the produce path alone)."""
    decoded = [decode_batch(raw) for raw in batches]
    encoded = [[OutgoingRecord(topic_name(settings, TOPIC_BY_TYPE[e.type]), record_key(e), encode_event(e))
                for e in events] for events in decoded]
    producer = create_producer(settings, impl, client_id="bench-baseline")
    await producer.start()
    sent = 0

    async def send(index: int) -> None:
        if pre_encoded:
            await producer.send_batch(encoded[index])
        else:
            await producer.send_events(decoded[index])

    try:
        await send(0)  # warm-up: metadata, connections
        until = time.perf_counter() + duration_s

        async def worker(offset: int) -> None:
            nonlocal sent
            i = offset
            while time.perf_counter() < until:
                await send(i % len(decoded))
                sent += len(decoded[i % len(decoded)])
                i += clients

        begun = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(clients)))
        return sent, time.perf_counter() - begun
    finally:
        await producer.stop()


async def wait_ready(base_url: str, processes: int) -> None:
    """Until /readyz answers 200; with several processes on the port, until enough answers in a row
    that each has surely started (connections land on any of them)."""
    wanted = 1 if processes == 1 else 10 * processes
    in_a_row = 0
    async with httpx.AsyncClient(base_url=base_url) as probe:
        for _ in range(600):
            try:
                ready = (await probe.get("/readyz", headers={"Connection": "close"})).status_code == 200
            except httpx.TransportError:
                ready = False
            in_a_row = in_a_row + 1 if ready else 0
            if in_a_row >= wanted:
                return
            await asyncio.sleep(0.05 if ready else 0.1)
    raise SystemExit("the service did not become ready")


class Variant(NamedTuple):
    """One configuration of the service under test: HTTP_LOOP, SHARE_FAST_CHECKS, processes on the port."""

    http_loop: str
    fast_checks: str
    processes: int

    @property
    def label(self) -> str:
        return f"{self.http_loop}/checks-{self.fast_checks}/x{self.processes}"


def parse_variants(text: str) -> list[Variant]:
    """"uvloop:on:1,asyncio:off:1" -> variants (loop:fast-checks:processes)."""
    out = []
    for item in text.split(","):
        loop, checks, processes = item.strip().split(":")
        if loop not in ("auto", "asyncio", "uvloop") or checks not in ("on", "off"):
            raise SystemExit(f"bad variant {item!r}: loop:on|off:processes")
        out.append(Variant(loop, checks, int(processes)))
    return out


async def measure_service(args: argparse.Namespace, settings: IngestSettings, token: str,
                          batches: list[bytes], variant: Variant) -> dict[str, Any]:
    """Start the service as `variant` says, load it for the duration, stop it; its figures."""
    env = {**os.environ, "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
           "DATABASE_SCHEMA": settings.database_schema, "HTTP_PORT": str(settings.http_port),
           "RATE_LIMIT_PER_SECOND": "1000000", "LOG_LEVEL": "WARNING",
           "KAFKA_PRODUCER_IMPL": args.producer_impl, "HTTP_LOOP": variant.http_loop,
           "SHARE_FAST_CHECKS": "true" if variant.fast_checks == "on" else "false"}
    if variant.processes == 1:
        command = [sys.executable, "-m", "services.ingest"]
    else:
        command = [sys.executable, str(ROOT / "bench" / "ingest_reuseport.py")]
    processes = [subprocess.Popen(command, env=env, cwd=ROOT) for _ in range(variant.processes)]
    try:
        base_url = f"http://127.0.0.1:{settings.http_port}"
        await wait_ready(base_url, variant.processes)
        accepted, latencies_s, elapsed_s, statuses = await http_run(
            base_url, token, batches, args.clients, args.duration, args.warmup)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    http_rate = accepted / elapsed_s
    print(f"HTTP POST /v1/events [{variant.label}]: {http_rate:,.0f} events/s ({len(latencies_s)} requests, "
          f"statuses {statuses}); latency p50 {percentile(latencies_s, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(latencies_s, 0.99) * 1000:.1f} ms, "
          f"mean {statistics.fmean(latencies_s) * 1000:.1f} ms", flush=True)
    return {"http_loop": variant.http_loop, "fast_checks": variant.fast_checks, "processes": variant.processes,
            "http_events_per_s": http_rate, "requests": len(latencies_s),
            "p50_ms": percentile(latencies_s, 0.5) * 1000, "p99_ms": percentile(latencies_s, 0.99) * 1000}


async def main(args: argparse.Namespace) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    settings = IngestSettings(
        kafka_topic_prefix=f"{schema}.", database_schema=schema, http_port=free_port(),
        rate_limit_per_second=1e6,
    )
    variants = (parse_variants(args.variants) if args.variants
                else [Variant(args.http_loop, args.fast_checks, args.processes)])
    admin_conn = await asyncpg.connect(settings.database_url)
    await admin_conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        await migrate_database(settings)
        await ensure_topics(settings)
        conn = await connect(settings)
        try:
            _, token = await ApiKeyStore(conn).create("bench", {"ingest"})
        finally:
            await conn.close()
        batches = make_batches(64, args.batch)
        print(f"service producer: {args.producer_impl}; variants {[v.label for v in variants]}; "
              f"{args.rounds} round(s); {args.clients} clients, {args.batch}-event batches "
              f"({len(batches[0]) / 1024:.0f} KiB each), {args.duration:g}s after {args.warmup:g}s warm-up")
        runs: list[dict[str, Any]] = []
        for round_no in range(args.rounds):
            # Each round measures its own baseline, so every figure has one from the same minute.
            sent, baseline_s = await producer_run(settings, batches, args.clients, args.baseline_duration,
                                                  args.baseline_impl)
            baseline_rate = sent / baseline_s
            print(f"round {round_no + 1}: baseline send_events ({args.baseline_impl}): "
                  f"{baseline_rate:,.0f} events/s ({args.baseline_duration:g}s, same batches, same concurrency)",
                  flush=True)
            raw_rate = 0.0
            if args.pre_encoded_baseline:
                sent, raw_s = await producer_run(settings, batches, args.clients, args.baseline_duration,
                                                 args.baseline_impl, pre_encoded=True)
                raw_rate = sent / raw_s
                print(f"round {round_no + 1}: baseline send_batch of pre-encoded records: {raw_rate:,.0f} events/s",
                      flush=True)
            for variant in variants:
                figures = await measure_service(args, settings, token, batches, variant)
                figures.update(round=round_no + 1, baseline_events_per_s=baseline_rate,
                               ratio=figures["http_events_per_s"] / baseline_rate)
                shown = ""
                if raw_rate:
                    figures.update(pre_encoded_baseline_events_per_s=raw_rate,
                                   ratio_pre_encoded=figures["http_events_per_s"] / raw_rate)
                    shown = f"; / pre-encoded baseline: {figures['ratio_pre_encoded']:.2f}"
                print(f"  HTTP / baseline [{variant.label}]: {figures['ratio']:.2f}{shown}", flush=True)
                runs.append(figures)
        if args.json:
            first = runs[0]
            print(json.dumps({"clients": args.clients, "batch": args.batch, "duration_s": args.duration,
                              "producer_impl": args.producer_impl, "baseline_impl": args.baseline_impl,
                              **first, "runs": runs}), flush=True)
    finally:
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
    parser.add_argument("--http-loop", choices=("auto", "asyncio", "uvloop"), default="asyncio",
                        help="HTTP_LOOP of the service under test")
    parser.add_argument("--fast-checks", choices=("on", "off"), default="on",
                        help="SHARE_FAST_CHECKS of the service under test")
    parser.add_argument("--processes", type=int, default=1,
                        help="ingest processes sharing the port (SO_REUSEPORT)")
    parser.add_argument("--variants", default="",
                        help="compare configurations, e.g. asyncio:off:1,uvloop:on:1,uvloop:on:2 "
                        "(loop:fast-checks:processes); overrides the three options above")
    parser.add_argument("--rounds", type=int, default=1,
                        help="baseline then every variant, this many times (alternated)")
    parser.add_argument("--pre-encoded-baseline", action="store_true",
                        help="also measure send_batch of records encoded beforehand (the produce path alone)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures (bench/run_all.py)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
