"""Alerter rule evaluation, in memory and against the real broker (a benchmark, not a test).

    source .chimera/stack.env && .venv/bin/python bench/alerter_bench.py [--workers 100000] [--rules 100]
        [--records 20000] [--probes 200] [--partitions 12] [--no-e2e] [--quick]

A sweep of W worker snapshot records (docs/aggregator.md; 4 workers per miner `m<i>`, 1% offline,
2% inefficient, 1% slow) against R rules as a pool writes them: 4 worker rules without selectors
(online == 0, efficiency < 0.9 over 1h, hashrate < X over 1h at 95% confidence, seconds since last
share > 600; an alert per worker), 4 selecting a pool, 12 on pool/miner/performance/custom metrics
(no worker record concerns them), R - 20 selecting one miner each. Measured in one run, CPU time,
each phase in a process of its own (so each peak RSS, VmHWM, is its own):

(a) baseline: `orjson.loads` of the W record values alone, records/s;
(b) `decode_snapshot` + `Engine.observations(record)` of every record, as the snapshot agent does
    (target < 0.25 s at 100k x 100): records/s, observations, ratio to (a);
(b2) `Engine.apply` of them into a dict of `GroupState` (now = the reading's time, as the group
    agent does); again with the agent's `decode_state`/`encode_state` of each group's table
    value; the peak RSS of processes holding those group states and nothing else, as objects and
    as the agent's table holds them (orjson bytes);
(b3) a rule without group_by over every worker (one group of W series): one more observation
    into it, in memory and with the agent's decode+encode of that state;
(c) end to end (`--e2e`, on when KAFKA_BOOTSTRAP_SERVERS is set): fresh topic prefix and schema,
    the alerter in a process (`bootstrap` + `start`), the rule `worker_online == 0` by
    pool/miner/worker (duration 0) through RuleStore, N online worker records: records/s until
    `chimera_alerter_records_total` reaches N, and until its groups table holds N groups; then P
    workers go offline one at a time and a plain consumer of `chimera.alerts` times each firing
    record from its offline record's produce: p50/p99 (target p99 < 1 s); the peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run_state import drop_run_state  # noqa: E402  (this folder)

from services.alerter.adapters.codec import decode_state, encode_state  # noqa: E402
from services.alerter.adapters.rule_store import RuleStore  # noqa: E402
from services.alerter.adapters.sources import decode_snapshot  # noqa: E402
from services.alerter.bootstrap import bootstrap  # noqa: E402
from services.alerter.config import AlerterSettings  # noqa: E402
from services.alerter.domain.evaluate import Observation  # noqa: E402
from services.alerter.domain.lifecycle import GroupState, observe  # noqa: E402
from services.alerter.domain.rules import Rule  # noqa: E402
from services.alerter.engine import Engine  # noqa: E402
from shared.db.migrate import migrate_database  # noqa: E402
from shared.kafka.options import client_options  # noqa: E402
from shared.kafka.producer import EventProducer, OutgoingRecord  # noqa: E402
from shared.kafka.topics import Topic, ensure_topics, topic_name  # noqa: E402

WINDOWS = ("1m", "5m", "15m", "1h", "24h")
SECONDS = (60, 300, 900, 3600, 86400)
STALE_MS = 900_000
RESULT = "RESULT "  # marks a child's result line (faust writes terminal escapes to stdout)


def proc_status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_value(i: int, at_ms: int, *, online: bool | None = None) -> tuple[bytes, bytes]:
    """Key and value of worker i's snapshot record (online None: 1% of the workers offline)."""
    miner, name = f"m{i // 4}", f"w{i % 4}"
    off = (i % 100 == 7) if online is None else not online
    rate = 0.0 if off else 1e12 * (0.5 + (i * 7919 % 1000) / 1000) * (0.3 if i % 97 == 3 else 1.0)
    eff = 0.85 if i % 50 == 11 else 0.995
    shares = {w: int(rate * s / 2**32 / 1024) for w, s in zip(WINDOWS, SECONDS)}  # vardiff ~1024
    figures = {
        "as_of_ms": at_ms - at_ms % 60_000, "online": not off,
        "last_share_at_ms": at_ms - (1_200_000 if off else (i % 60) * 1000),
        "hashrate": dict.fromkeys(WINDOWS, rate), "hashrate_lower": {w: rate * 0.9 for w in WINDOWS},
        "hashrate_upper": {w: rate * 1.1 for w in WINDOWS}, "shares": shares,
        "submitted": {w: round(n / eff) for w, n in shares.items()},
        "shares_per_second": {w: n / eff / s for (w, n), s in zip(shares.items(), SECONDS)},
        "efficiency": dict.fromkeys(WINDOWS, None if off else eff),
    }
    value = {"entity": "worker", "pool": "main", "miner": miner, "worker": name, "as_of_ms": at_ms, "figures": figures}
    # A right-sized copy: orjson >= 3.12 returns a >= 4 KiB allocation whatever the length, and
    # records held here stand for what Kafka hands the alerter.
    return f"worker:main/{miner}/{name}".encode(), bytes(memoryview(orjson.dumps(value)))


def bench_rules(count: int) -> list[Rule]:
    """A pool's rule set: 20 fixed ones, then one per watched miner."""
    each = ("pool", "miner", "worker")
    fixed: list[tuple[str, str, float, dict[str, Any]]] = [
        ("worker_online", "==", 0.0, {"group_by": each}),
        ("worker_efficiency", "<", 0.9, {"window": "1h", "group_by": each}),
        ("worker_hashrate", "<", 4e11, {"window": "1h", "confidence": 0.95, "group_by": each}),
        ("worker_seconds_since_last_share", ">", 600.0, {"group_by": each}),
        ("worker_hashrate", "<", 0.5, {"window": "1h", "relative_to": "24h", "labels": {"pool": "main"},
                                       "group_by": each}),
        ("worker_shares_per_second", "<", 0.01, {"window": "15m", "labels": {"pool": "main"},
                                                 "group_by": ("miner", "worker")}),
        ("worker_online", "==", 0.0, {"labels": {"pool": "backup"}, "group_by": each}),
        ("worker_efficiency", "<", 0.8, {"window": "5m", "labels": {"pool": "solo"}, "group_by": ("worker",)}),
        ("pool_total_hashrate", "<", 1e15, {"window": "1h", "group_by": ("pool",)}),
        ("pool_active_workers", "<", 1000.0, {}), ("pool_luck", "<", 0.5, {"labels": {"blocks": "128"}}),
        ("pool_round_effort", ">", 3.0, {"labels": {"pool": "main"}}),
        ("miner_online", "==", 0.0, {"group_by": ("pool", "miner")}),
        ("miner_hashrate", "<", 0.5, {"window": "1h", "relative_to": "24h", "group_by": ("miner",)}),
        ("miner_workers_online", "<", 1.0, {"labels": {"miner": "m1"}}),
        ("cpu_usage", ">", 90.0, {"group_by": ("host",)}), ("memory_usage", ">", 90.0, {"group_by": ("host",)}),
        ("disk_usage", ">", 85.0, {"labels": {"service": "postgres"}, "group_by": ("host",)}),
        ("queue_depth", ">", 1000.0, {"group_by": ("queue",)}), ("payout_backlog", ">", 100.0, {}),  # custom
    ]
    per_miner = [("worker_online", "==", 0.0, {}), ("worker_hashrate", "<", 2e11, {"window": "15m"}),
                 ("worker_efficiency", "<", 0.95, {"window": "1h"}),
                 ("worker_seconds_since_last_share", ">", 300.0, {})]
    for i in range(max(count - len(fixed), 0)):
        metric, op, threshold, extra = per_miner[i % 4]
        fixed.append((metric, op, threshold, {**extra, "labels": {"miner": f"m{i}"}, "group_by": ("worker",)}))
    return [Rule(id=n + 1, name=f"bench rule {n + 1}", metric=metric, operator=op, threshold=threshold, version=1,
                 **extra) for n, (metric, op, threshold, extra) in enumerate(fixed[:count])]


# --- in-memory phases (each in its own process) ---------------------------------------------


def cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of `work()`, and what it returned."""
    began = time.process_time()
    result = work()
    return time.process_time() - began, result


def apply_one(engine: Engine, states: dict[str, Any], obs: Observation, encoded: bool) -> int:
    """An observation into its group's state (encoded: as orjson bytes, like the faust agent's
    table, decoded and encoded again); the transitions made."""
    known = states.get(obs.fingerprint)
    if encoded and known is not None:
        known = decode_state(known)[0]
    state, made = engine.apply(known, obs, obs.reading.at_ms)
    states[obs.fingerprint] = encode_state(state, 0) if encoded else state
    return len(made)


def phase_sweep(args: argparse.Namespace) -> dict[str, Any]:
    at = time.time_ns() // 1_000_000
    values = [worker_value(i, at)[1] for i in range(args.workers)]
    engine = Engine(stale_after_ms=STALE_MS)
    engine.set_rules(bench_rules(args.rules))
    out: dict[str, Any] = {"rules_in_force": len(engine.rules), "record_bytes": sum(map(len, values)) / len(values)}
    out["a_s"] = cpu(lambda: deque(map(orjson.loads, values), 0))[0]
    out["decode_s"] = cpu(lambda: deque(map(decode_snapshot, values), 0))[0]
    # as the snapshot agent does: a record's observations made, then sent and let go
    out["b_s"], out["observations"] = cpu(lambda: sum(len(engine.observations(decode_snapshot(raw)))
                                                      for raw in values))
    # (b3) one group of every worker's series, built with `observe` (O(1) each), then timed.
    rules = [r for r, _ in engine.rules.values()]
    big = Rule(id=10_000, name="workers offline in the pool", metric="worker_online", operator="==",
               threshold=0.0, group_by=("pool",), version=1)
    engine.set_rules([*rules, big])
    big_obs = [engine.backfill([big.id], [decode_snapshot(raw)])[0] for raw in values]
    group = GroupState(big_obs[0].fingerprint, big.id, dict(big_obs[0].labels))
    for obs in big_obs:
        observe(group, obs.reading, obs.holds, obs.limit)
    probe = big_obs[-100:]
    del big_obs
    out["b3_apply_ms"] = cpu(lambda: [engine.apply(group, o, o.reading.at_ms) for o in probe])[0] / len(probe) * 1e3
    out["b3_codec_ms"] = cpu(lambda: [decode_state(encode_state(group, 0)) for _ in range(3)])[0] / 3 * 1e3
    out["b3_state_bytes"], out["b3_series"] = len(encode_state(group, 0)), len(group.series)
    del group, probe
    engine.set_rules(rules)
    # (b2) the sweep's observations (made again, untimed) into group states.
    observations = [obs for raw in values for obs in engine.observations(decode_snapshot(raw))]
    states: dict[str, GroupState] = {}
    out["b2_s"], out["transitions"] = cpu(lambda: sum(apply_one(engine, states, o, False) for o in observations))
    out["groups"] = len(states)
    out["firing"] = sum(s.status == "firing" for s in states.values())
    states.clear()
    out["b2_table_s"] = cpu(lambda: sum(apply_one(engine, states, o, True) for o in observations))[0]
    out["vm_hwm_mib"] = proc_status_mib("VmHWM")
    return out


def phase_states(args: argparse.Namespace, encoded: bool) -> dict[str, Any]:
    """The sweep's group states and nothing else: records made, decoded, observed, applied one by
    one; kept as objects, or (encoded) as the faust agent's table keeps them."""
    engine = Engine(stale_after_ms=STALE_MS)
    engine.set_rules(bench_rules(args.rules))
    gc.collect()
    base = proc_status_mib("VmHWM")
    at = time.time_ns() // 1_000_000
    states: dict[str, Any] = {}
    for i in range(args.workers):
        for obs in engine.observations(decode_snapshot(worker_value(i, at)[1])):
            apply_one(engine, states, obs, encoded)
    gc.collect()
    return {"base_mib": base, "vm_hwm_mib": proc_status_mib("VmHWM"), "groups": len(states),
            "bytes": sum(map(len, states.values())) / len(states) if encoded else 0}


# --- end to end (its own process; the alerter inside it) --------------------------------------


def alerter_settings(args: argparse.Namespace) -> AlerterSettings:
    return AlerterSettings(kafka_topic_prefix=args.prefix, database_schema=args.schema,
                           kafka_topic_partitions=args.partitions, metrics_port=0, alerter_tick_s=0.25,
                           alerter_rules_reload_s=0.5, log_level="WARNING")


async def phase_e2e(args: argparse.Namespace) -> dict[str, Any]:
    settings = alerter_settings(args)
    snapshots = topic_name(settings, Topic.SNAPSHOTS)
    out: dict[str, Any] = {}
    began = time.perf_counter()
    service = await bootstrap(settings)
    await service.start()
    producer = EventProducer(settings, client_id="bench-producer", linger_ms=5, max_batch_size=1024 * 1024)
    consumer = AIOKafkaConsumer(topic_name(settings, Topic.ALERTS), **client_options(settings), group_id=None,
                                auto_offset_reset="earliest")
    seen: dict[tuple[str, str], float] = {}

    async def read_alerts() -> None:
        async for message in consumer:
            alert = orjson.loads(message.value)
            if alert["status"] == "firing":
                seen.setdefault((alert["labels"].get("miner"), alert["labels"].get("worker")), time.perf_counter())

    def evaluated() -> float:
        return service.telemetry.registry.get_sample_value(
            "chimera_alerter_records_total", {"topic": Topic.SNAPSHOTS, "status": "evaluated"}) or 0.0

    async def until(check: Any, what: str, poll_s: float = 0.05) -> float:
        deadline = time.perf_counter() + args.timeout
        while not check():
            if time.perf_counter() > deadline:
                raise SystemExit(f"e2e: timed out waiting for {what}")
            await asyncio.sleep(poll_s)
        return time.perf_counter()

    await producer.start()
    await consumer.start()
    reader = asyncio.create_task(read_alerts())
    try:
        rule = await RuleStore(service.pool).create(Rule(
            id=0, name="bench worker offline", metric="worker_online", operator="==", threshold=0.0,
            severity="critical", group_by=("pool", "miner", "worker")))
        await until(lambda: rule.id in service.streams.engine.rules, "the rule to load")
        out["startup_s"], at, t0 = time.perf_counter() - began, time.time_ns() // 1_000_000, time.perf_counter()
        for base in range(0, args.records, 5_000):
            await producer.send_batch([OutgoingRecord(snapshots, *worker_value(i, at, online=True))
                                       for i in range(base, min(base + 5_000, args.records))], timeout_s=120)
        out["produce_s"] = time.perf_counter() - t0
        first = await until(lambda: evaluated() > 0, "a first record", 0.01)
        done = await until(lambda: evaluated() >= args.records, "every record evaluated")
        groups = await until(lambda: len(service.streams.groups) >= args.records, "every group stored")
        out.update(evaluated_s=done - t0, steady_s=done - first, groups_s=groups - t0)
        await asyncio.sleep(1.0)  # ticks and reloads settle
        produced: dict[tuple[str, str], float] = {}
        step = max(args.records // args.probes, 1)
        for k in range(args.probes):
            i = (k * step) % args.records
            key, value = worker_value(i, time.time_ns() // 1_000_000, online=False)
            produced[(f"m{i // 4}", f"w{i % 4}")] = time.perf_counter()
            await producer.send_batch([OutgoingRecord(snapshots, key, value)])
            await asyncio.sleep(0.02)
        await until(lambda: produced.keys() <= seen.keys(), "every firing alert", 0.02)
        latencies = sorted((seen[k] - produced[k]) * 1000 for k in produced)
        out.update(p50_ms=statistics.median(latencies), p99_ms=latencies[round(0.99 * (len(latencies) - 1))],
                   max_ms=latencies[-1], probes=len(latencies), vm_hwm_mib=proc_status_mib("VmHWM"))
    finally:
        reader.cancel()
        await consumer.stop()
        await producer.stop()
        await service.stop()
    return out


# --- the run ----------------------------------------------------------------------------------


def run_phase(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, *sys.argv[1:], "--phase", phase, "--prefix", args.prefix or "",
               "--schema", args.schema or ""]  # the same options, so the same sizes
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if RESULT in line]
    if done.returncode or not lines:
        raise SystemExit(f"phase {phase} failed ({done.returncode}): {done.stdout[-2000:]}")
    return json.loads(lines[-1][lines[-1].rindex(RESULT) + len(RESULT):])  # type: ignore[no-any-return]


async def run_e2e(args: argparse.Namespace) -> dict[str, Any]:
    args.prefix = f"bench{uuid.uuid4().hex[:8]}."
    args.schema = args.prefix[:-1]
    settings = alerter_settings(args)
    admin_conn = await asyncpg.connect(settings.database_url)
    await admin_conn.execute(f'CREATE SCHEMA "{args.schema}"')
    try:
        await migrate_database(settings)
        await ensure_topics(settings)
        return await asyncio.to_thread(run_phase, "e2e", args)
    finally:
        await drop_run_state(settings, admin_conn, [args.schema])
        shutil.rmtree(ROOT / f"{topic_name(settings, settings.alerter_group_id)}-data", ignore_errors=True)  # faust's


def main(args: argparse.Namespace) -> None:
    w, s = args.workers, run_phase("sweep", args)
    summary: dict[str, Any] = {"workers": w, "rules": args.rules, "sweep": s}
    a_rate, b_rate = w / s["a_s"], w / s["b_s"]
    n_obs = s["observations"]
    print(f"{w:,} worker records ({s['record_bytes']:.0f} bytes each), {s['rules_in_force']} rules in force")
    print(f"(a) orjson.loads alone: {s['a_s']:.3f} s CPU, {a_rate:,.0f} records/s\n(b) decode_snapshot + "
          f"Engine.observations: {s['b_s']:.3f} s CPU (target < 0.25 s), {b_rate:,.0f} records/s, ratio to (a) "
          f"{b_rate / a_rate:.3f}; {n_obs:,} observations ({n_obs / w:.1f} a record, "
          f"{(s['b_s'] - s['decode_s']) / n_obs * 1e6:.1f} us each); decode_snapshot alone {s['decode_s']:.3f} s")
    print(f"(b2) Engine.apply into GroupStates: {s['b2_s']:.3f} s CPU ({n_obs / s['b2_s']:,.0f} observations/s), "
          f"{s['groups']:,} groups, {s['transitions']:,} transitions, {s['firing']:,} firing; with the agent's "
          f"decode_state/encode_state per observation {s['b2_table_s']:.3f} s; sweep process peak RSS "
          f"{s['vm_hwm_mib']:.0f} MiB")
    for encoded in (False, True):
        st = run_phase("states:encoded" if encoded else "states", args)
        summary["states_encoded" if encoded else "states"] = st
        grown = st["vm_hwm_mib"] - st["base_mib"]
        print(f"     a process holding only the {st['groups']:,} group states "
              f"{'as orjson bytes (the table)' if encoded else 'as GroupState objects'}: peak RSS "
              f"{st['vm_hwm_mib']:.0f} MiB ({grown:.0f} MiB over its {st['base_mib']:.0f} MiB start, "
              f"{grown * 2**20 / st['groups']:,.0f} bytes a group"
              + (f"; {st['bytes']:.0f} bytes encoded)" if encoded else ")"))
    per_obs = s["b3_apply_ms"] + s["b3_codec_ms"]
    print(f"(b3) one rule without group_by (one group of {s['b3_series']:,} series): Engine.apply "
          f"{s['b3_apply_ms']:.2f} ms an observation; the agent's decode+encode of that state "
          f"({s['b3_state_bytes'] / 1e6:.1f} MB) {s['b3_codec_ms']:.1f} ms more: {per_obs * w / 1000:,.0f} s a sweep")
    if not args.e2e:
        print("(c) end to end: skipped (no KAFKA_BOOTSTRAP_SERVERS, or --no-e2e)")
        if args.json:
            print(json.dumps(summary), flush=True)
        return
    e, n = asyncio.run(run_e2e(args)), args.records
    print(f"(c) the alerter in a process ({args.partitions} partitions, 1 rule, started in {e['startup_s']:.1f} s): "
          f"{n:,} records produced in {e['produce_s']:.2f} s; evaluated at {n / e['evaluated_s']:,.0f} records/s "
          f"({n / e['steady_s']:,.0f} from the first), all {n:,} groups stored in {e['groups_s']:.1f} s "
          f"({n / e['groups_s']:,.0f} records/s; ratio to (a) {n / e['groups_s'] / a_rate:.4f})")
    print(f"    offline -> firing on chimera.alerts, {e['probes']} workers one by one: p50 {e['p50_ms']:.0f} ms, "
          f"p99 {e['p99_ms']:.0f} ms (target < 1000), max {e['max_ms']:.0f} ms; peak RSS {e['vm_hwm_mib']:.0f} MiB")
    if args.json:
        print(json.dumps({**summary, "records": n, "e2e": e}), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--records", type=int, default=20_000, help="worker records produced end to end")
    parser.add_argument("--probes", type=int, default=200, help="workers taken offline for the latency")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds any e2e wait may take")
    parser.add_argument("--e2e", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--quick", action="store_true", help="5,000 workers, 2,000 e2e records, 50 probes")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures (bench/run_all.py)")
    parser.add_argument("--phase", choices=["sweep", "states", "states:encoded", "e2e"], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.workers, args.records, args.probes = 5_000, 2_000, 50
    if args.e2e is None:
        args.e2e = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if not arguments.phase:
        main(arguments)
    else:
        result = asyncio.run(phase_e2e(arguments)) if arguments.phase == "e2e" else phase_sweep(arguments) \
            if arguments.phase == "sweep" else phase_states(arguments, arguments.phase == "states:encoded")
        print(RESULT + json.dumps(result), flush=True)
