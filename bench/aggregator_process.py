"""The aggregator as a process of its own against a fresh schema, measured until its stored
offsets reach the end of the input: phase (c) of aggregator_bench.py, and what the other
aggregator benchmarks (take-over, scale-out, peers) share with it."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.db.migrate import migrate_database  # noqa: E402
from shared.kafka.topics import Topic, topic_name  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

__all__ = ["free_port", "pg_server_figures", "phase_pipeline", "vm_hwm_mib"]


def vm_hwm_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])



async def pg_server_figures(conn: asyncpg.Connection) -> dict[str, Any]:
    """WAL position and checkpoint counters: the server-wide cost of a run (the bench lock keeps
    other benchmarks off the server meanwhile)."""
    row = await conn.fetchrow(
        "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS wal_bytes, checkpoints_timed, checkpoints_req,"
        " buffers_checkpoint, buffers_backend, checkpoint_write_time, checkpoint_sync_time FROM pg_stat_bgwriter")
    return {k: float(v) for k, v in dict(row).items()}


async def phase_pipeline(settings: ServiceSettings, events: int, timeout_s: float,
                         outputs: bool = True, variant_env: dict[str, str] | None = None,
                         py_spy: str | None = None) -> dict[str, Any] | None:
    if importlib.util.find_spec("services.aggregator.bootstrap") is None:
        return None
    await migrate_database(settings)
    port = free_port()
    env = {**os.environ, **(variant_env or {}), "KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
           "KAFKA_TOPIC_PARTITIONS": str(settings.kafka_topic_partitions),
           "DATABASE_SCHEMA": settings.database_schema, "METRICS_PORT": str(port), "LOG_LEVEL": "WARNING",
           "AGGREGATOR_OUTPUTS": "exporter,rollups,snapshots" if outputs else "",
           # its own consumer group per run: a second run re-reads everything
           "AGGREGATOR_GROUP_ID": f"bench-{'outputs' if outputs else 'bare'}"}
    topic = topic_name(settings, Topic.SHARES)
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.database_schema})
    started = time.perf_counter()
    command = [sys.executable, "-m", "services.aggregator"]
    if py_spy:
        command = ["/tmp/tools/bin/py-spy", "record", "--idle", "-o", py_spy, "--format", "speedscope", "--", *command]
    server_before = await pg_server_figures(conn)
    process = subprocess.Popen(command, env=env, cwd=ROOT)  # noqa: ASYNC220
    first_progress: tuple[float, int] | None = None
    done_at: float | None = None
    peak = 0.0
    # Share of samples in which the aggregator's batch write is running in PostgreSQL.
    samples = writing = 0
    try:
        while time.perf_counter() - started < timeout_s:
            if process.poll() is not None:
                raise SystemExit(f"the aggregator exited with {process.returncode}")
            peak = max(peak, vm_hwm_mib(process.pid))
            try:
                done = await conn.fetchval("SELECT coalesce(sum(next_offset), 0)::bigint FROM aggregator_offsets"
                                           " WHERE topic = $1 AND consumer_group = $2", topic,
                                           settings.kafka_topic_prefix + env["AGGREGATOR_GROUP_ID"])
            except asyncpg.UndefinedTableError:
                done = 0
            if done and first_progress is None:
                first_progress = (time.perf_counter(), done)
            if first_progress is not None:
                samples += 1
                writing += bool(await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
                    " AND (query LIKE 'SELECT chimera_aggregator_write%' OR query LIKE '%aggregator_event_ids%')"
                    " AND pid <> pg_backend_pid()"))
            if done >= events:
                done_at = time.perf_counter()
                break
            await asyncio.sleep(0.1)
        server_after = await pg_server_figures(conn)
        scrape: dict[str, Any] = {}
        if done_at is not None and outputs:
            import httpx

            async with httpx.AsyncClient() as client:
                t = time.perf_counter()
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
                scrape = {"scrape_s": time.perf_counter() - t, "scrape_bytes": len(response.content),
                          "has_pool_total_hashrate": b"pool_total_hashrate{" in response.content}
        peak = max(peak, vm_hwm_mib(process.pid))
    finally:
        process.send_signal(signal.SIGINT if py_spy else signal.SIGTERM)  # py-spy writes its profile on SIGINT
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        await conn.close()
    if done_at is None or first_progress is None:
        return {"completed": False, "vm_hwm_mib": peak}
    t0, done0 = first_progress
    return {"completed": True, "events": events, "seconds_from_start": done_at - started,
            "rate_from_start": events / (done_at - started),
            "rate_steady": (events - done0) / max(done_at - t0, 1e-9), "vm_hwm_mib": peak, **scrape,
            "db_writing_share": writing / max(samples, 1),
            "server": {k: server_after[k] - server_before[k] for k in server_after}}
