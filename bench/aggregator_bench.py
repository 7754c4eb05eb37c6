"""Aggregator throughput against the real broker (a benchmark, not a test).

    source .chimera/stack.env && .venv/bin/python bench/aggregator_bench.py [--events 1000000] [--workers 100000]
        [--minutes 20 | --live-rate 50000]

Produces N share events (W distinct workers, 4 per miner, event times spread
over the last `--minutes` minutes) to a fresh prefixed topic set, then
measures, in the same run and each phase in a process of its own (so each
peak RSS is its own):

(a) baseline: a bare aiokafka consumer that only decodes the records with orjson;
(a2) the same consumer with the aggregator's decoding and contract checks only;
(b) domain: the same consumer, bulk decoding and validation
    (`services.aggregator.consume.decoding.decode_records`, else `shared.events.decode_batch`)
    and `PoolAggregate.ingest_shares` (one model per partition, no database),
    then the outputs' costs on that state: their `on_batch` bookkeeping, one
    snapshot tick (computed, sent to a null producer), the exporter's ranking
    and a scrape;
(c) pipeline: `python -m services.aggregator` (if it exists) against a fresh
    schema, with the outputs wired in (`AGGREGATOR_OUTPUTS`), until its stored
    offsets reach the end of every partition.

Reported: events/s of each, ratios to (a), and peak RSS (VmHWM) of each process;
for (c) also the share of the time PostgreSQL is inside a batch write (sampled
from pg_stat_activity), and the WAL bytes and checkpoints of the run.

`--variants 'base=;x=ENV=VALUE'` runs (a), then only (c) under each variant's
environment, alternated `--repeat` times, each on a fresh schema: a lever
against its same-run baseline. `--py-spy FILE` profiles (c) (speedscope).

Two shapes of load matter, because the aggregator's work is per event AND
per worker-minute (window sums, liveness, one row upserted):
- a backlog (the default: 1M events over 20 minutes from 100,000 workers, half
  a share per worker-minute: nearly every share is a worker-minute row of its
  own, the worst case), and
- live load (`--live-rate 50000`: event time advances as fast as at a pool
  that really emits 50,000 shares a second, about 30 shares per worker-minute
  with 100,000 workers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator_process import phase_pipeline, vm_hwm_mib  # noqa: E402  (this folder)
from run_state import drop_run_state  # noqa: E402  (this folder)

from shared.kafka.options import client_options  # noqa: E402
from shared.kafka.producer import EventProducer, OutgoingRecord  # noqa: E402
from shared.kafka.topics import Topic, ensure_topics, topic_name  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

FETCH = {"max_partition_fetch_bytes": 8 * 1024 * 1024, "fetch_max_bytes": 64 * 1024 * 1024}


def settings_for(prefix: str, schema: str = "public", partitions: int = 12) -> ServiceSettings:
    return ServiceSettings(kafka_topic_prefix=prefix, database_schema=schema, kafka_topic_partitions=partitions)


# --- producing ---------------------------------------------------------------------------


async def produce(settings: ServiceSettings, events: int, workers: int, minutes: float) -> float:
    topic = topic_name(settings, Topic.SHARES)
    now = time.time_ns() // 1_000_000
    start = now - int(minutes * 60_000)
    step = minutes * 60_000 / events
    run = uuid.uuid4().hex[:8]
    producer = EventProducer(settings, client_id="bench-producer", linger_ms=20, max_batch_size=1024 * 1024,
                             delivery_timeout_s=120)
    await producer.start()
    began = time.perf_counter()
    try:
        chunk = 50_000
        for base in range(0, events, chunk):
            records = []
            for j in range(base, min(base + chunk, events)):
                w = j % workers
                miner = f"bc1qbench{w // 4:06d}"
                value = orjson.dumps({
                    "event_id": f"{run}-{j}", "type": "share", "ts": int(start + j * step), "pool": "main",
                    "node": f"node-{j % 4}", "miner": miner, "worker": f"rig{w % 4}",
                    "difficulty": 65536.0, "status": "rejected" if j % 50 == 0 else "accepted",
                })
                records.append(OutgoingRecord(topic, miner.encode(), value))
            await producer.send_batch(records, timeout_s=120)
    finally:
        await producer.stop()
    return time.perf_counter() - began


# --- phases (each in its own process) --------------------------------------------------------


async def consume(settings: ServiceSettings, handle: Any) -> tuple[int, float]:
    """Read every record of the shares topic from the start; `handle(partition, records)` per fetch."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **FETCH)
    await consumer.start()
    try:
        topic = topic_name(settings, Topic.SHARES)
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka_topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if end[tp] > 0}
        count = 0
        began = time.perf_counter()
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=20_000)
            for tp, records in batches.items():
                handle(tp.partition, records)
                count += len(records)
                if records[-1].offset + 1 >= end[tp]:
                    pending.discard(tp)
        return count, time.perf_counter() - began
    finally:
        await consumer.stop()


async def phase_baseline(settings: ServiceSettings) -> dict[str, Any]:
    def handle(_: int, records: list[Any]) -> None:
        for r in records:
            orjson.loads(r.value)

    count, elapsed = await consume(settings, handle)
    return {"events": count, "seconds": elapsed, "rate": count / elapsed, "vm_hwm_mib": vm_hwm_mib()}


def _decoder() -> Any:
    from services.aggregator.consume.decoding import decode_records

    return lambda records: [e for e in decode_records(records).events if e is not None]


async def phase_decode(settings: ServiceSettings) -> dict[str, Any]:
    """The baseline plus the aggregator's decoding and contract checks, nothing else: the
    ceiling of any consumer that validates what it counts."""
    decode = _decoder()
    count, elapsed = await consume(settings, lambda _, records: decode(records))
    return {"events": count, "seconds": elapsed, "rate": count / elapsed, "vm_hwm_mib": vm_hwm_mib()}


async def phase_domain(settings: ServiceSettings) -> dict[str, Any]:
    from services.aggregator.consume.results import BatchResult, PartitionResult
    from services.aggregator.domain.model import PoolAggregate
    from services.aggregator.outputs.exporter import MetricsExporter
    from services.aggregator.outputs.rollups import RollupJob
    from services.aggregator.outputs.snapshot_stream import SnapshotPublisher

    decode = _decoder()
    models: dict[int, PoolAggregate] = {}
    results: list[tuple[int, Any]] = []

    def handle(partition: int, records: list[Any]) -> None:
        model = models.get(partition)
        if model is None:
            model = models[partition] = PoolAggregate()
        results.append((partition, model.ingest_shares(decode(records))))

    count, elapsed = await consume(settings, handle)
    out: dict[str, Any] = {"events": count, "seconds": elapsed, "rate": count / elapsed,
                           "workers": sum(len(m.workers) for m in models.values()),
                           "vm_hwm_mib_after_ingest": vm_hwm_mib()}

    class NullProducer:
        async def start(self) -> None: ...
        async def stop(self) -> None: ...
        async def send_batch(self, records: Any, **_: Any) -> None:
            out["snapshot_bytes"] = sum(len(r[2]) for r in records)

    snapshots = SnapshotPublisher(settings, producer=NullProducer())  # type: ignore[arg-type]
    exporter = MetricsExporter(db_pool=None)
    rollups = RollupJob(None)  # type: ignore[arg-type]  # bookkeeping only: no pass runs
    began = time.perf_counter()
    for partition, result in results:
        batch = BatchResult(partitions={partition: PartitionResult(models[partition], shares=result)},
                             received={Topic.SHARES: result.received}, batch_size=result.received)
        for output in (snapshots, exporter, rollups):
            output.on_batch(batch)
    out["outputs_on_batch_s"] = time.perf_counter() - began
    began = time.perf_counter()
    report = await snapshots.tick()
    out["snapshot_tick_s"] = time.perf_counter() - began
    out["snapshot_tick_records"] = report.records
    out["snapshot_pending_after_tick"] = report.pending_left
    began = time.perf_counter()
    second = await snapshots.tick()  # no sweep: the backlog draining
    out["snapshot_tick2_s"] = time.perf_counter() - began
    out["snapshot_tick2_records"] = second.records
    began = time.perf_counter()
    await exporter.rank()
    out["exporter_rank_s"] = time.perf_counter() - began
    began = time.perf_counter()
    await exporter.refresh()
    out["exporter_refresh_s"] = time.perf_counter() - began
    began = time.perf_counter()
    text = exporter.render()
    out["exporter_scrape_s"] = time.perf_counter() - began
    out["exporter_scrape_bytes"] = len(text)
    out["vm_hwm_mib"] = vm_hwm_mib()
    return out


def run_phase(name: str, args: argparse.Namespace, schema: str | None = None,
              variant_env: str = "") -> dict[str, Any] | None:
    """Run one phase in a child process (its own peak RSS) and read its JSON result."""
    phase, _, variant = name.partition(":")
    command = [sys.executable, __file__, "--phase", phase, "--prefix", args.prefix, "--schema", schema or args.schema,
               *(["--variant-env", variant_env] if variant_env else []),
               *(["--py-spy", args.py_spy] if getattr(args, "py_spy", None) and phase == "pipeline" else []),
               *(["--without-outputs"] if variant == "bare" else []),
               "--events", str(args.events), "--partitions", str(args.partitions),
               "--timeout", str(args.timeout)]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = done.stdout.strip().splitlines()[-1]
    return json.loads(line)  # type: ignore[no-any-return]


async def child(args: argparse.Namespace) -> None:
    schema = f"{args.schema}_bare" if args.without_outputs else args.schema  # a database of its own
    settings = settings_for(args.prefix, schema, args.partitions)
    if args.phase == "baseline":
        result = await phase_baseline(settings)
    elif args.phase == "decode":
        result = await phase_decode(settings)
    elif args.phase == "domain":
        result = await phase_domain(settings)
    else:
        variant_env = dict(kv.split("=", 1) for kv in args.variant_env.split(",") if kv)
        result = await phase_pipeline(settings, args.events, args.timeout, outputs=not args.without_outputs,
                                      variant_env=variant_env, py_spy=args.py_spy)
    print(json.dumps(result))


async def main(args: argparse.Namespace) -> None:
    args.prefix = f"bench{uuid.uuid4().hex[:8]}."
    args.schema = args.prefix[:-1]
    settings = settings_for(args.prefix, args.schema, args.partitions)
    admin_conn = await asyncpg.connect(settings.database_url)
    await admin_conn.execute(f'CREATE SCHEMA "{args.schema}"')
    await admin_conn.execute(f'CREATE SCHEMA "{args.schema}_bare"')
    try:
        await ensure_topics(settings)
        produce_s = await produce(settings, args.events, args.workers, args.minutes)
        print(f"produced {args.events:,} share events ({args.workers:,} workers, {args.workers // 4:,} miners, "
              f"{args.partitions} partitions, event times over {args.minutes * 60:,.0f}s: "
              f"{args.events / args.workers / args.minutes:.1f} shares per worker-minute) in {produce_s:.1f}s")
        baseline = run_phase("baseline", args)
        assert baseline is not None
        print(f"(a) bare aiokafka + orjson.loads: {baseline['rate']:,.0f} events/s "
              f"({baseline['seconds']:.1f}s), peak RSS {baseline['vm_hwm_mib']:.0f} MiB")
        if args.variants:
            await compare_variants(args, admin_conn, baseline)
            return
        decode = run_phase("decode", args)
        assert decode is not None
        print(f"(a2) + decoding and the contract's checks only: {decode['rate']:,.0f} events/s, ratio to (a) "
              f"{decode['rate'] / baseline['rate']:.2f}")
        domain = run_phase("domain", args)
        assert domain is not None
        print(f"(b) + bulk validation + PoolAggregate.ingest_shares: {domain['rate']:,.0f} events/s "
              f"({domain['seconds']:.1f}s), ratio to (a) {domain['rate'] / baseline['rate']:.2f}; "
              f"{domain['workers']:,} workers in memory, peak RSS {domain['vm_hwm_mib_after_ingest']:.0f} MiB")
        print(f"    outputs on that state: on_batch bookkeeping {domain['outputs_on_batch_s']:.2f}s in all "
              f"({domain['outputs_on_batch_s'] / domain['seconds'] * 100:.1f}% of (b)); one snapshot tick "
              f"{domain['snapshot_tick_s']:.2f}s for {domain['snapshot_tick_records']} "
              f"({domain.get('snapshot_bytes', 0) / 1e6:.1f} MB, {domain['snapshot_pending_after_tick']:,} left; "
              f"the next tick {domain['snapshot_tick2_s']:.2f}s for {domain['snapshot_tick2_records']}); "
              f"exporter rank {domain['exporter_rank_s']:.2f}s, refresh {domain['exporter_refresh_s']:.2f}s, "
              f"scrape {domain['exporter_scrape_s'] * 1000:.1f} ms ({domain['exporter_scrape_bytes']:,} bytes); "
              f"peak RSS {domain['vm_hwm_mib']:.0f} MiB")
        if args.compare_outputs:
            bare = run_phase("pipeline:bare", args)
            if bare is not None and bare["completed"]:
                print(f"(c0) python -m services.aggregator WITHOUT outputs: {bare['rate_steady']:,.0f} events/s "
                      f"steady, ratio to (a) {bare['rate_steady'] / baseline['rate']:.2f}; "
                      f"peak RSS {bare['vm_hwm_mib']:.0f} MiB")
        else:
            bare = None
        pipeline = run_phase("pipeline", args)
        if pipeline is None:
            print("(c) full pipeline: services.aggregator.bootstrap does not exist (yet); skipped")
        elif not pipeline["completed"]:
            print(f"(c) full pipeline: did not consume everything within {args.timeout:g}s "
                  f"(peak RSS {pipeline['vm_hwm_mib']:.0f} MiB)")
        else:
            print(f"(c) python -m services.aggregator (PostgreSQL, outputs wired): "
                  f"{pipeline['rate_steady']:,.0f} events/s steady, {pipeline['rate_from_start']:,.0f} events/s "
                  f"including start-up ({pipeline['seconds_from_start']:.1f}s), ratio to (a) "
                  f"{pipeline['rate_steady'] / baseline['rate']:.2f}; peak RSS {pipeline['vm_hwm_mib']:.0f} MiB; "
                  f"/metrics scrape {pipeline.get('scrape_s', float('nan')) * 1000:.0f} ms")
        if args.json:
            print(json.dumps({"events": args.events, "workers": args.workers, "minutes": args.minutes,
                              "partitions": args.partitions, "baseline": baseline, "decode": decode,
                              "domain": domain, "bare": bare, "pipeline": pipeline}), flush=True)
    finally:
        await drop_run_state(settings, admin_conn, [args.schema, f"{args.schema}_bare"])


async def compare_variants(args: argparse.Namespace, admin_conn: asyncpg.Connection,
                           baseline: dict[str, Any]) -> None:
    """The full pipeline (outputs wired) under each variant (NAME=ENV=VALUE/ENV=VALUE...; the first
    is the baseline), alternated `--repeat` times, each run on a fresh schema (the first run's rows
    would turn the next run's inserts into updates)."""
    variants = [(v.split("=", 1)[0], v.split("=", 1)[1].replace("/", ",") if "=" in v else "")
                for v in args.variants.split(";") if v]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    for attempt in range(args.repeat):
        for name, env in variants:
            schema = f"{args.schema}_{name}_{attempt}"
            await admin_conn.execute(f'CREATE SCHEMA "{schema}"')
            try:
                result = run_phase("pipeline", args, schema=schema, variant_env=env)
            finally:
                await admin_conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            assert result is not None and result["completed"], result
            runs[name].append(result)
            server = result["server"]
            print(f"(v) {name} #{attempt + 1}: {result['rate_steady']:,.0f} events/s steady, ratio to (a) "
                  f"{result['rate_steady'] / baseline['rate']:.3f}; database writing "
                  f"{result['db_writing_share'] * 100:.0f}% of the time; WAL "
                  f"{server['wal_bytes'] / args.events:,.0f} bytes/event; checkpoints "
                  f"{server['checkpoints_timed']:.0f} timed + {server['checkpoints_req']:.0f} requested", flush=True)
    first = variants[0][0]
    for name, _ in variants:
        ratios = [r["rate_steady"] / b["rate_steady"] for r, b in zip(runs[name], runs[first])]
        print(f"(v) {name} / {first} in the same attempt: " + ", ".join(f"{x:.2f}" for x in ratios))
    if args.json:
        print(json.dumps({"events": args.events, "workers": args.workers, "minutes": args.minutes,
                          "partitions": args.partitions, "baseline": baseline, "variants": runs}), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=20.0, help="event times spread over the last N minutes")
    parser.add_argument("--live-rate", type=float,
                        help="spread event times as a pool emitting this many shares/s would (sets --minutes)")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds the full pipeline may take")
    parser.add_argument("--compare-outputs", action="store_true",
                        help="also run the full pipeline without the outputs (snapshots, exporter, roll-ups)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures (bench/run_all.py)")
    parser.add_argument("--variants", default="",
                        help="compare the bare pipeline under environments: 'base=;copy=AGGREGATOR_MINUTE_WRITE=copy'"
                             " ('/' joins several VAR=VALUE of one variant; the first is the baseline)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant, alternated")
    parser.add_argument("--py-spy", help="record the pipeline's profile to this file (speedscope)")
    parser.add_argument("--variant-env", default="", help=argparse.SUPPRESS)
    parser.add_argument("--without-outputs", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["baseline", "decode", "domain", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.live_rate:
        args.minutes = args.events / args.live_rate / 60
    return args


if __name__ == "__main__":
    arguments = parse_args()
    asyncio.run(child(arguments) if arguments.phase else main(arguments))
