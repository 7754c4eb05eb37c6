"""How long a restarted aggregator takes to take its partitions over (a benchmark, not a test).

    source .chimera/stack.env && .venv/bin/python bench/aggregator_takeover_bench.py [--events 1000000]

Produces N share events (the shapes of aggregator_bench.py), lets one aggregator
process consume them all, stops it, and starts a second one on the same group,
schema and topics: it finds every partition's stored offsets and rebuilds the
models from PostgreSQL, the deduplicators from their stored journals (before
the journals it re-read the dedup horizon's records from Kafka: 14.7-16.1 s
for this default run, 66-73k records/s, ratio 0.17-0.18).
Reported: the seconds until every partition is taken over, the event ids
replayed and their rate (whole rebuild time), against a bare aiokafka +
orjson read of the same records measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from aggregator_bench import phase_baseline, produce, settings_for
from aggregator_process import phase_pipeline
from run_state import drop_run_state

from shared.kafka.topics import ensure_topics
from shared.settings import ServiceSettings

_REBUILT = re.compile(r"partition (\d+) rebuilt in ([0-9.]+)s: .* (\d+) (?:records|event ids) replayed")


async def restart(settings: ServiceSettings, timeout_s: float) -> dict[str, float]:
    env = {**os.environ, "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
           "KAFKA_TOPIC_PARTITIONS": str(settings.kafka_topic_partitions),
           "DATABASE_SCHEMA": settings.database_schema, "METRICS_PORT": "0", "LOG_LEVEL": "INFO",
           "AGGREGATOR_GROUP_ID": "bench-outputs"}  # the group phase_pipeline used
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "services.aggregator"], env=env, cwd=ROOT,  # noqa: ASYNC220
                               stderr=subprocess.PIPE, text=True)
    rebuilt: dict[int, tuple[float, int]] = {}
    try:
        assert process.stderr is not None
        while len(rebuilt) < settings.kafka_topic_partitions:
            line = await asyncio.wait_for(asyncio.to_thread(process.stderr.readline), timeout_s)
            if not line:
                raise SystemExit(f"the aggregator exited with {process.wait()}")
            match = _REBUILT.search(line)
            if match:
                rebuilt[int(match[1])] = (float(match[2]), int(match[3]))
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=60)
    replayed = sum(n for _, n in rebuilt.values())
    busy = sum(s for s, _ in rebuilt.values())
    return {"seconds": elapsed, "replayed": replayed, "rebuild_seconds": busy, "rate": replayed / max(busy, 1e-9)}


async def main(args: argparse.Namespace) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    schema = prefix[:-1]
    settings = settings_for(prefix, schema, args.partitions)
    admin_conn = await asyncpg.connect(settings.database_url)
    await admin_conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        await ensure_topics(settings)
        await produce(settings, args.events, args.workers, args.minutes)
        baseline = await phase_baseline(settings)
        print(f"bare aiokafka + orjson.loads of the {args.events:,} records: {baseline['rate']:,.0f} records/s")
        first = await phase_pipeline(settings, args.events, args.timeout)
        assert first is not None and first["completed"], first
        print(f"first aggregator consumed them all in {first['seconds_from_start']:.1f}s")
        took = await restart(settings, args.timeout)
        print(f"restarted aggregator: every partition taken over {took['seconds']:.1f}s after start; "
              f"{took['replayed']:,} event ids replayed into the deduplicators in {took['rebuild_seconds']:.1f}s "
              f"of rebuilds ({took['rate']:,.0f} ids/s, ratio to the bare read "
              f"{took['rate'] / baseline['rate']:.2f})")
        if args.json:
            print(json.dumps({"events": args.events, "workers": args.workers, "baseline": baseline,
                              "first": first, "takeover": took}, default=str), flush=True)
    finally:
        await drop_run_state(settings, admin_conn, [schema])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=0.34, help="event times spread over the last N minutes")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures (bench/run_all.py)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
