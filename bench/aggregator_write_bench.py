"""The aggregator's batch write alone, against the real PostgreSQL (a benchmark, not a test).

    source .chimera/stack.env && .venv/bin/python bench/aggregator_write_bench.py [--events 500000]
        [--workers 100000] [--minutes 20] [--batch 100000] [--modes arrays,hot] [--repeat 3] [--explain]

Builds the `PartitionWrite`s a backlog of share events folds into (the shape of
bench/aggregator_bench.py: W workers, 4 per miner, event times spread evenly over
`--minutes`, so at 100,000 workers nearly every share of a batch is a worker-minute
row of its own and every worker's liveness row moves each batch) and writes them
through `AggregatorStore.write`, batch after batch, on a fresh schema per run.
Modes (session settings, table layouts: MODES) are alternated `--repeat` times; reported:
write events/s of each, its ratio to the first mode in the same attempt, and
WAL bytes per event.

`--explain` runs one more pass of the first mode with auto_explain on the
store's session (nested statements, ANALYZE, WAL) and sums each statement of
the batch function by kind: what a batch's time inside PostgreSQL goes to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import uuid
import warnings
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.aggregator.adapters.store import AggregatorStore  # noqa: E402
from services.aggregator.consume.writes import OffsetMove, PartitionWrite, WorkerStatusRow  # noqa: E402
from services.aggregator.domain.dedup import IdJournal  # noqa: E402
from services.aggregator.domain.minutes import MinuteStats  # noqa: E402
from shared.db.migrate import migrate_database  # noqa: E402
from shared.db.pool import connect_options, init_connection  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

MINUTE_MS = 60_000
TOPIC = "bench.shares"

# Modes: (session settings of the store's connections, SQL run after migrating). The
# experiments measure what a setting or layout would win; only winners become migrations.
# (A COPY-and-merge minute path and a one-statement batch were measured too: docs/aggregator.md.)
MODES: dict[str, tuple[dict[str, str], str]] = {
    "arrays": ({}, ""),
    "walz": ({"wal_compression": "lz4"}, ""),
    "walpglz": ({"wal_compression": "pglz"}, ""),
    "ff": ({}, "ALTER TABLE worker_status SET (fillfactor = 70)"),
    "nopartidx": ({}, "DROP INDEX worker_status_partition_idx"),
    # worker_status updates become HOT only without an index on a column they change (offline_after):
    # an upper bound, as readers count online workers by (pool, offline_after).
    "hot": ({}, "ALTER TABLE worker_status SET (fillfactor = 70); DROP INDEX worker_status_partition_idx;"
                " DROP INDEX worker_status_pool_offline_idx"),
    "nominerts": ({}, "DROP INDEX miner_metrics_miner_ts_idx"),
}


def build_batches(events: int, workers: int, minutes: float, batch: int, partitions: int) -> list[list[PartitionWrite]]:
    """The writes of each batch, per partition, as the fold would make them."""
    start_ms = (time.time_ns() // 1_000_000) - int(minutes * MINUTE_MS)
    step_ms = minutes * MINUTE_MS / events
    next_offsets = [0] * partitions
    out: list[list[PartitionWrite]] = []
    for base in range(0, events, batch):
        writes = {p: PartitionWrite(partition=p, watermark_ms=0) for p in range(partitions)}
        counts = [0] * partitions
        for j in range(base, min(base + batch, events)):
            w = j % workers
            miner = f"bc1qbench{w // 4:06d}"
            worker = f"rig{w % 4}"
            p = zlib.crc32(miner.encode()) % partitions
            ts = int(start_ms + j * step_ms)
            minute = ts - ts % MINUTE_MS
            pw = writes[p]
            stats = pw.worker_deltas.setdefault(("main", miner, worker, minute), MinuteStats())
            stats.accepted += 1
            stats.difficulty_units += 65536 << 80
            stats.last_share_ms = ts
            pool_stats = pw.pool_deltas.setdefault(("main", minute), MinuteStats())
            pool_stats.accepted += 1
            pool_stats.difficulty_units += 65536 << 80
            pool_stats.last_share_ms = ts
            journal = pw.id_journals.setdefault("share", IdJournal())
            journal.append(hash((j, "id")) & 0x7FFF_FFFF_FFFF_FFFF, ts)
            journal.watermark_ms = pw.watermark_ms = max(pw.watermark_ms, ts)
            counts[p] += 1
        for p, pw in writes.items():
            seen: dict[tuple[str, str, str], int] = {}
            for pool, miner, worker, minute in pw.worker_deltas:
                seen[(pool, miner, worker)] = max(seen.get((pool, miner, worker), 0), minute)
            pw.workers = [WorkerStatusRow(pool, miner, worker, last_share_ms=minute + 30_000,
                                          offline_after_ms=minute + 15 * MINUTE_MS, connected=None,
                                          connected_ms=None, connections={}, partition=p,
                                          activity=(minute - 9 * MINUTE_MS, b"\x01\x02\x04"))
                          for (pool, miner, worker), minute in seen.items()]
            for minute in {k[1] for k in pw.pool_deltas}:
                for later in range(10):
                    pw.pool_activity[("main", minute + later * MINUTE_MS)] = [len(seen) // 40, len(seen) // 10]
            pw.claims = {(TOPIC, p): next_offsets[p]}
            pw.offsets = [OffsetMove(TOPIC, p, next_offsets[p], next_offsets[p] + counts[p], pw.watermark_ms)]
            next_offsets[p] += counts[p]
        out.append([pw for pw in writes.values() if pw.offsets[0].next_offset > pw.offsets[0].expected])
    return out


class Explained:
    """Sums auto_explain's reports (sent to the client as LOG notices) by statement kind."""

    KINDS = (("miner_metrics", "miner_metrics"), ("pool_metrics", "pool_metrics"), ("blocks", "INTO blocks"),
             ("worker_status", "worker_status"), ("offsets", "aggregator_offsets"),
             ("journals", "aggregator_event_ids"), ("stage", "aggregator_minute_stage"))

    def __init__(self) -> None:
        self.ms: dict[str, float] = defaultdict(float)
        self.wal_bytes: dict[str, float] = defaultdict(float)

    def listener(self, _: Any, message: asyncpg.PostgresLogMessage) -> None:
        text = message.message
        found = re.search(r"duration: ([\d.]+) ms", text)
        if not found:
            return
        query = text.split("Query Text:", 1)[-1].split("\n", 1)[0] if "Query Text:" in text else text
        plan = text
        if "chimera_aggregator_write(" in query and "INSERT" not in query and "UPDATE" not in query:
            kind = "function (whole)"
        else:
            body = query + plan[:400]
            kind = next((name for name, needle in self.KINDS if needle in body), "other")
        self.ms[kind] += float(found.group(1))
        for wal in re.findall(r"WAL: (?:records=\d+ )?(?:fpi=\d+ )?bytes=(\d+)", plan)[:1]:
            self.wal_bytes[kind] += float(wal)


async def run_mode(settings: ServiceSettings, batches: list[list[PartitionWrite]], mode: str,
                   explain: Explained | None) -> dict[str, Any]:
    session, setup_sql = MODES[mode]
    await migrate_database(settings)
    if setup_sql:
        conn = await asyncpg.connect(**connect_options(settings))
        try:
            await conn.execute(setup_sql)
        finally:
            await conn.close()
    # One connection, as the store uses one per batch: the session settings below stick.
    options = connect_options(settings)
    options["server_settings"].update(session)
    if explain is not None:  # session defaults, so the pool's RESET ALL on release keeps them
        options["server_settings"].update({
            "session_preload_libraries": "auto_explain", "auto_explain.log_min_duration": "0",
            "auto_explain.log_analyze": "on", "auto_explain.log_wal": "on", "auto_explain.log_timing": "off",
            "auto_explain.log_nested_statements": "on", "client_min_messages": "log"})

    async def listen(conn: asyncpg.Connection) -> None:
        if explain is not None:
            conn.add_log_listener(explain.listener)

    pool = await asyncpg.create_pool(**options, min_size=1, max_size=1, init=init_connection, setup=listen)
    admin = await asyncpg.connect(settings.database_url)
    try:
        store = AggregatorStore(pool, "bench")
        await store.ensure_offsets({(TOPIC, p): 0 for p in range(12)})
        wal_before = await admin.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        events = 0
        began = time.perf_counter()
        for writes in batches:
            outcome = await store.write(writes)
            assert not outcome.stale, outcome
            events += sum(w.offsets[0].next_offset - w.offsets[0].expected for w in writes)
        elapsed = time.perf_counter() - began
        wal = float(await admin.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn") - wal_before)
        return {"mode": mode, "events": events, "seconds": elapsed, "rate": events / elapsed,
                "wal_bytes_per_event": wal / events}
    finally:
        await pool.close()
        await admin.close()


async def main(args: argparse.Namespace) -> None:
    prefix = f"benchw{uuid.uuid4().hex[:8]}"
    batches = build_batches(args.events, args.workers, args.minutes, args.batch, 12)
    rows = sum(len(w.worker_deltas) for b in batches for w in b)
    print(f"{len(batches)} batches of {args.batch:,} share events: {rows / args.events:.2f} minute rows an event")
    modes = args.modes.split(",")
    admin = await asyncpg.connect(ServiceSettings().database_url)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    try:
        for attempt in range(args.repeat):
            for mode in modes:
                schema = f"{prefix}_{mode}_{attempt}"
                try:
                    result = await run_mode(ServiceSettings(database_schema=schema), batches, mode, None)
                finally:
                    await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                runs[mode].append(result)
                print(f"{mode} #{attempt + 1}: {result['rate']:,.0f} events/s written ({result['seconds']:.2f}s), "
                      f"WAL {result['wal_bytes_per_event']:,.0f} bytes/event", flush=True)
        for mode in modes:
            ratios = [r["rate"] / b["rate"] for r, b in zip(runs[mode], runs[modes[0]])]
            print(f"{mode} / {modes[0]} in the same attempt: " + ", ".join(f"{x:.2f}" for x in ratios))
        explained = None
        if args.explain:
            explained = Explained()
            schema = f"{prefix}_explain"
            try:
                await run_mode(ServiceSettings(database_schema=schema), batches, modes[0], explained)
            finally:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            print("inside PostgreSQL, summed over the batches (ANALYZE without timing overhead per node):")
            for kind, ms in sorted(explained.ms.items(), key=lambda kv: -kv[1]):
                print(f"  {kind:18s} {ms:9.0f} ms  WAL {explained.wal_bytes.get(kind, 0) / 1e6:8.1f} MB")
        if args.json:
            print(json.dumps({"runs": runs, "explain": explained and {"ms": explained.ms,
                                                                      "wal_bytes": explained.wal_bytes}}))
    finally:
        await admin.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--modes", default="arrays")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    # The explain pass keeps its log listener across the pool's releases on purpose.
    warnings.filterwarnings("ignore", message=".*active log listener")
    asyncio.run(main(parse_args()))
