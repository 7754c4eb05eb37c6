"""The ingest's produce path against the broker's own ceiling (a benchmark, not a test).

    source .chimera/stack.env && .venv/bin/python bench/produce_bench.py [--runs 2] [--json]

Sends 1,000-event share batches (bench/ingest_bench.py's `make_batches`,
already decoded) from N concurrent callers to a fresh topic set, acks=all and
idempotence on for every variant, each variant in its own process:
  aiokafka        today's EventProducer.send_events (the baseline)
  aiokafka-batch  the same over aiokafka's batch API (shared/kafka/batch_producer.py)
  confluent       confluent-kafka / librdkafka (shared/kafka/confluent_producer.py)
  ceiling         Kafka's own org.apache.kafka.tools.ProducerPerformance, records of
                  our mean encoded size, unthrottled (the broker's ceiling here)
Variants run round-robin `--runs` times; every figure is reported as a ratio to
the baseline and to the ceiling of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest_bench import make_batches  # noqa: E402  (this folder)
from run_state import drop_run_state  # noqa: E402

from shared.events import TOPIC_BY_TYPE, Event, decode_batch, encode_event  # noqa: E402
from shared.kafka.producer_choice import PRODUCER_IMPLS, ProducerImpl, create_producer  # noqa: E402
from shared.kafka.topics import ensure_topics, topic_name  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

KAFKA_JARS = Path.home() / ".m2" / "repository"
CEILING = "ceiling"


def decoded_batches(count: int, size: int) -> list[list[Event]]:
    return [decode_batch(raw) for raw in make_batches(count, size)]


async def python_run(settings: ServiceSettings, impl: ProducerImpl, clients: int,
                     duration_s: float) -> dict[str, float]:
    """Events/s of one producer implementation: `clients` callers of send_events for `duration_s`."""
    batches = decoded_batches(64, 1000)
    producer = create_producer(settings, impl, client_id=f"bench-{impl}")
    await producer.start()
    sent = 0
    try:
        await producer.send_events(batches[0])  # warm-up: metadata, connections
        until = time.perf_counter() + duration_s

        async def caller(offset: int) -> None:
            nonlocal sent
            i = offset
            while time.perf_counter() < until:
                batch = batches[i % len(batches)]
                await producer.send_events(batch)
                sent += len(batch)
                i += clients

        begun, cpu_begun = time.perf_counter(), _cpu_s()
        await asyncio.gather(*(caller(n) for n in range(clients)))
        elapsed_s, cpu_s = time.perf_counter() - begun, _cpu_s() - cpu_begun
    finally:
        await producer.stop()
    return {"events": sent, "seconds": elapsed_s, "events_per_s": sent / elapsed_s,
            "cpu_us_per_event": cpu_s / sent * 1e6}


def _cpu_s() -> float:
    # CPU of the whole process (librdkafka's threads included): on a machine shared
    # with other benchmarks this varies far less than events/s does.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def mean_record_size() -> int:
    events = [event for batch in decoded_batches(4, 1000) for event in batch]
    return round(statistics.fmean(len(encode_event(event)) for event in events))


def ceiling_run(settings: ServiceSettings, records: int, record_size: int) -> dict[str, float]:
    """Kafka's ProducerPerformance on the shares topic, with the producer settings ours uses."""
    jars = sorted(str(jar) for jar in KAFKA_JARS.glob("**/*.jar"))
    topic = topic_name(settings, TOPIC_BY_TYPE["share"])
    command = [
        "java", "-Xmx512m", "-cp", ":".join(jars), "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
        "--throughput", "-1", "--producer-props",
        f"bootstrap.servers={settings.kafka_bootstrap_servers}", "acks=all",
        "enable.idempotence=true", "compression.type=lz4", "linger.ms=5", "batch.size=262144",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    # The last summary line: "N records sent, R records/sec (M MB/sec), ..."
    match = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", output)
    if not match:
        raise SystemExit(f"unexpected ProducerPerformance output:\n{output}")
    sent, rate = match[-1]
    return {"events": int(sent), "seconds": int(sent) / float(rate), "events_per_s": float(rate)}


def run_variant(args: argparse.Namespace, variant: str, prefix: str) -> dict[str, float]:
    """One measured phase in its own process (no JIT, import or GC state shared between phases)."""
    command = [sys.executable, __file__, "--phase", variant, "--prefix", prefix,
               "--clients", str(args.clients), "--duration", str(args.duration),
               "--ceiling-records", str(args.ceiling_records)]
    output = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def phase(args: argparse.Namespace) -> None:
    settings = ServiceSettings(kafka_topic_prefix=args.prefix)
    if args.phase == CEILING:
        result = ceiling_run(settings, args.ceiling_records, mean_record_size())
    else:
        result = asyncio.run(python_run(settings, args.phase, args.clients, args.duration))
    print(json.dumps(result), flush=True)


async def main(args: argparse.Namespace) -> None:
    prefix = f"bench_{uuid.uuid4().hex[:8]}."
    settings = ServiceSettings(kafka_topic_prefix=prefix)
    admin_conn = await asyncpg.connect(settings.database_url)
    # The baseline always runs: every figure is a ratio to it.
    variants = ["aiokafka", *(v for v in args.variants if v != "aiokafka"), CEILING]
    rounds: list[dict[str, float]] = []
    cpus: list[dict[str, float]] = []
    try:
        await ensure_topics(settings)
        print(f"{args.clients} callers, 1,000-event share batches, {args.duration:g}s per phase; "
              f"ceiling: {args.ceiling_records:,} records of {mean_record_size()} bytes", flush=True)
        for run in range(args.runs):
            results = {v: await asyncio.to_thread(run_variant, args, v, prefix) for v in variants}
            rates = {v: r["events_per_s"] for v, r in results.items()}
            rounds.append(rates)
            cpus.append({v: r["cpu_us_per_event"] for v, r in results.items() if v != CEILING})
            print(f"round {run + 1}: " + ", ".join(
                f"{v} {rates[v]:,.0f}/s ({rates[v] / rates['aiokafka']:.2f}x baseline, "
                f"{rates[v] / rates[CEILING]:.2f} of ceiling)" for v in variants), flush=True)
            print("    CPU per event: " + ", ".join(
                f"{v} {cpu:.1f} us ({cpus[-1]['aiokafka'] / cpu:.2f}x less than baseline)"
                for v, cpu in cpus[-1].items()), flush=True)
    finally:
        await drop_run_state(settings, admin_conn, [])
    summary = {
        v: {"events_per_s": [r[v] for r in rounds],
            "vs_baseline": [r[v] / r["aiokafka"] for r in rounds],
            "vs_ceiling": [r[v] / r[CEILING] for r in rounds],
            "cpu_us_per_event": [c[v] for c in cpus if v in c]}
        for v in variants
    }
    for v, figures in summary.items():
        print(f"{v}: {min(figures['events_per_s']):,.0f}-{max(figures['events_per_s']):,.0f} events/s, "
              f"{min(figures['vs_baseline']):.2f}-{max(figures['vs_baseline']):.2f}x baseline, "
              f"{min(figures['vs_ceiling']):.2f}-{max(figures['vs_ceiling']):.2f} of ceiling")
    if args.json:
        print(json.dumps({"clients": args.clients, "duration_s": args.duration, "variants": summary}),
              flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent send_events callers")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per phase")
    parser.add_argument("--runs", type=int, default=2, help="rounds of every variant")
    parser.add_argument("--variants", nargs="+", default=list(PRODUCER_IMPLS), choices=PRODUCER_IMPLS)
    parser.add_argument("--ceiling-records", type=int, default=500_000)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument("--phase", choices=[*PRODUCER_IMPLS, CEILING], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.phase is not None:
        phase(arguments)
    else:
        asyncio.run(main(arguments))
