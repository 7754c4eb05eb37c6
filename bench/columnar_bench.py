"""What a columnar aggregator fold would win (issue 15, first lever): a benchmark.

    .venv/bin/python bench/columnar_bench.py [--events 600000] [--workers 100000] [--runs 3]

Input: the share record values bench/aggregator_bench.py's `produce` writes (same
generator, built in memory: no broker), keyed by miner into 12 partitions and cut
into batches of 10,000 per partition, one model per partition as the consumer
keeps them. Two shapes: live (event time advancing at 50,000 shares/s, ~30 shares
per worker-minute) and backlog (20 minutes, ~0.5 per worker-minute).

Phases, each in a process of its own, on the same batches:
  today          decode_records + PoolAggregate.ingest_shares             (baseline, "a")
  decode         decode_records alone (today's decoding and checks)
  fold           fold_shares alone on already-decoded shares             ("b")
  col_decode     bench/columnar decode_columns alone
  col_ingest     ColumnarAggregate.ingest alone on decoded columns (dedup, lateness,
                 fold, then today's per-group steps)
  col_fold       fold_columns alone on decoded columns (what replaces "b")
  columnar       decode_columns + ColumnarAggregate.ingest                ("c")
  svc_<mode>     the service's own steps with AGGREGATOR_FOLD=<mode>: decode_for_fold, then
                 fold_partition into a model built as the service builds it (stable-hash,
                 journaled dedup; liveness rows, offsets): records, columnar, auto
and a `verify` process (untimed) that asserts, batch by batch, that the columnar
results equal today's exactly (worker and pool deltas, activity, counts).
Printed: one JSON object with every rate and the ratios c/a and c/b per run.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka.structs import ConsumerRecord

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARTITIONS = 12
BATCH = 10_000
LIVE_RATE = 50_000
BACKLOG_MINUTES = 20.0
PHASES = ("today", "decode", "fold", "col_decode", "col_ingest", "col_fold", "columnar",
          "svc_records", "svc_columnar", "svc_auto")

RATIOS = {"c/a": ("columnar", "today"), "c/b": ("columnar", "fold"), "col_decode/decode": ("col_decode", "decode"),
          "col_fold/b": ("col_fold", "fold"), "svc_columnar/svc_records": ("svc_columnar", "svc_records"),
          "svc_auto/svc_records": ("svc_auto", "svc_records")}

Batch = list[ConsumerRecord[bytes, bytes]]


def batches(events: int, workers: int, shape: str, now_ms: int) -> list[tuple[int, Batch]]:
    """(partition, records) in consumer order; values as aggregator_bench.produce makes them."""
    minutes = events / LIVE_RATE / 60 if shape == "live" else BACKLOG_MINUTES
    start = now_ms - int(minutes * 60_000)
    step = minutes * 60_000 / events
    by_partition: list[Batch] = [[] for _ in range(PARTITIONS)]
    for j in range(events):
        w = j % workers
        miner = f"bc1qbench{w // 4:06d}"
        value = orjson.dumps({
            "event_id": f"run00000-{j}", "type": "share", "ts": int(start + j * step), "pool": "main",
            "node": f"node-{j % 4}", "miner": miner, "worker": f"rig{w % 4}",
            "difficulty": 65536.0, "status": "rejected" if j % 50 == 0 else "accepted",
        })
        key = miner.encode()
        p = zlib.crc32(key) % PARTITIONS  # not Kafka's murmur2, but as even a spread by miner
        part = by_partition[p]
        part.append(ConsumerRecord("shares", p, len(part), now_ms, 0, key, value, None, len(key), len(value), ()))
    out: list[tuple[int, Batch]] = []
    for base in range(0, max(map(len, by_partition)), BATCH):  # round robin, as getmany hands them out
        out.extend((p, recs[base:base + BATCH]) for p, recs in enumerate(by_partition) if recs[base:base + BATCH])
    return out


def _shares(decoded: Any) -> list[Any]:
    return [e for e in decoded.events if e is not None]


def run_phase(phase: str, work: list[tuple[int, Batch]], now_ms: int) -> dict[str, Any]:
    from bench.columnar.decode import decode_columns
    from bench.columnar.fold import fold_columns
    from bench.columnar.ingest import ColumnarAggregate
    from services.aggregator.config import AggregatorSettings
    from services.aggregator.consume.columnar_decode import decode_for_fold
    from services.aggregator.consume.decoding import decode_records
    from services.aggregator.consume.fold import fold_partition
    from services.aggregator.consume.takeover import new_model
    from services.aggregator.domain.minutes import fold_shares
    from services.aggregator.domain.model import PoolAggregate

    events = sum(len(b) for _, b in work)
    groups = 0
    step: Callable[[int, Any], int]
    # Untimed preparation: what the timed step takes as input.
    if phase in ("fold",):
        inputs: list[Any] = [_shares(decode_records(b, now_ms)) for _, b in work]
    elif phase in ("col_ingest", "col_fold"):
        inputs = [decode_columns(b, now_ms) for _, b in work]
    else:
        inputs = [b for _, b in work]
    models: dict[int, Any] = {}
    offsets: dict[int, int] = {}

    def model(p: int, kind: type) -> Any:
        found = models.get(p)
        if found is None:
            found = models[p] = kind()
        return found

    if phase == "today":
        def step(p: int, x: Any) -> int:
            return len(model(p, PoolAggregate).ingest_shares(_shares(decode_records(x, now_ms))).worker_deltas)
    elif phase == "decode":
        def step(p: int, x: Any) -> int:
            return len(decode_records(x, now_ms).events)
    elif phase == "fold":
        def step(p: int, x: Any) -> int:
            return len(fold_shares(x))
    elif phase == "col_decode":
        def step(p: int, x: Any) -> int:
            return len(decode_columns(x, now_ms))
    elif phase == "col_ingest":
        def step(p: int, x: Any) -> int:
            return len(model(p, ColumnarAggregate).ingest(x).worker_deltas)
    elif phase == "col_fold":
        def step(p: int, x: Any) -> int:
            return len(fold_columns(x))
    elif phase == "columnar":
        def step(p: int, x: Any) -> int:
            return len(model(p, ColumnarAggregate).ingest(decode_columns(x, now_ms)).worker_deltas)
    elif phase.startswith("svc_"):
        settings = AggregatorSettings(aggregator_fold=phase.removeprefix("svc_"))

        def step(p: int, x: Any) -> int:
            found = models.get(p)
            if found is None:
                found = models[p] = new_model(settings)
            decoded = decode_for_fold(x, now_ms, settings)
            folded = fold_partition(found, p, [("shares", x, decoded.events)], {"shares": offsets.get(p, 0)})
            offsets[p] = folded.write.offsets[0].next_offset
            return len(folded.write.worker_deltas)
    else:
        raise SystemExit(f"unknown phase {phase}")
    # The generated input (every batch of the run) is long-lived and not the phase's own: keep
    # the cyclic GC from rescanning it, as a consumer holding one batch at a time would not.
    gc.collect()
    gc.freeze()
    began = time.perf_counter()
    for (p, _), x in zip(work, inputs, strict=True):
        groups += step(p, x)
    elapsed = time.perf_counter() - began
    return {"events": events, "seconds": elapsed, "rate": events / elapsed, "groups": groups,
            "batches": len(work)}


def verify(work: list[tuple[int, Batch]], now_ms: int) -> dict[str, Any]:
    """Columnar == today, batch by batch (fold alone and the whole ingest)."""
    from bench.columnar.decode import decode_columns
    from bench.columnar.fold import fold_columns
    from bench.columnar.ingest import ColumnarAggregate
    from services.aggregator.consume.decoding import decode_records
    from services.aggregator.domain.minutes import fold_shares
    from services.aggregator.domain.model import PoolAggregate

    today: dict[int, PoolAggregate] = {}
    columnar: dict[int, ColumnarAggregate] = {}
    checked = 0
    for p, batch in work:
        shares = _shares(decode_records(batch, now_ms))
        cols = decode_columns(batch, now_ms)
        assert fold_columns(cols) == fold_shares(shares), "fold differs"
        a = today.setdefault(p, PoolAggregate()).ingest_shares(shares)
        c = columnar.setdefault(p, ColumnarAggregate()).ingest(cols)
        assert (a.received, a.duplicates, a.late, a.too_late) == (c.received, c.duplicates, c.late, c.too_late)
        assert a.worker_deltas == c.worker_deltas and a.pool_deltas == c.pool_deltas, "deltas differ"
        assert a.activity == c.activity, "activity differs"
        checked += len(batch)
    return {"verified_events": checked}


def child(args: argparse.Namespace) -> None:
    now_ms = args.now_ms
    work = batches(args.events, args.workers, args.shape, now_ms)
    out = verify(work, now_ms) if args.phase == "verify" else run_phase(args.phase, work, now_ms)
    print(json.dumps(out))


def spawn(phase: str, shape: str, args: argparse.Namespace, now_ms: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--phase", phase, "--shape", shape, "--events", str(args.events),
           "--workers", str(args.workers), "--now-ms", str(now_ms)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shapes", default="live,backlog,live:10000")
    parser.add_argument("--phases", default=",".join(PHASES), help="the phases to time, comma-separated")
    parser.add_argument("--phase")
    parser.add_argument("--shape", default="live")
    parser.add_argument("--now-ms", type=int, default=0)
    args = parser.parse_args()
    if args.phase:
        child(args)
        return
    now_ms = time.time_ns() // 1_000_000
    report: dict[str, Any] = {"events": args.events, "workers": args.workers, "batch": BATCH}
    for spec in args.shapes.split(","):  # "live", "backlog", or "live:10000" (another worker count)
        shape, _, workers = spec.partition(":")
        shape_args = argparse.Namespace(**{**vars(args), "workers": int(workers or args.workers)})
        entry: dict[str, Any] = {"workers": shape_args.workers, "verify": spawn("verify", shape, shape_args, now_ms),
                                 "runs": []}
        for _ in range(args.runs):
            rates = {phase: spawn(phase, shape, shape_args, now_ms) for phase in args.phases.split(",")}
            r = {phase: round(v["rate"]) for phase, v in rates.items()}
            run: dict[str, Any] = {"rate": r, "groups_per_batch": round(next(iter(rates.values()))["groups"]
                                                                       / next(iter(rates.values()))["batches"])}
            for name, (top, bottom) in RATIOS.items():  # those whose phases ran
                if top in r and bottom in r:
                    run[name] = round(r[top] / r[bottom], 2)
            entry["runs"].append(run)
        report[spec] = entry
        print(json.dumps({spec: entry}), file=sys.stderr, flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
