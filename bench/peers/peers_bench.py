"""Our aggregator beside the Python stream processors a user would pick instead (a benchmark).

    source .chimera/stack.env && .venv/bin/python bench/peers/peers_bench.py [--events 200000] [--workers 20000]
        [--live-per-minute 30] [--backlog-minutes 20] [--shapes live,backlog] [--json]

Needs the `bench` extra (quixstreams, confluent-kafka; faust-streaming is a
dependency already). For each shape of load, aggregator_bench.py's (live: about
30 shares per worker-minute; backlog: half a share per worker-minute), it
produces the shares with aggregator_bench's `produce` to a fresh prefixed topic
set, then runs on that same topic, each in a process of its own:

(a) the bare aiokafka + orjson reader (aggregator_bench's baseline phase);
(c) `python -m services.aggregator` against a fresh schema (its pipeline phase:
    dedup, liveness, exactly-once rows in PostgreSQL, outputs wired);
(q) the job in quixstreams (bench/peers/quix_job.py);
(f) the job in faust-streaming (bench/peers/faust_job.py).

The job: per worker and minute of event time, the accepted share count and
accepted difficulty sum. Reported per shape: events/s of each, each against
(a), and ours / quixstreams and ours / faust (issue 15 asks at least 4x).
The run's topics (and the frameworks' internal ones) and schema are dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(HERE))

from aggregator_bench import produce, run_phase, settings_for  # noqa: E402
from faust_job import changelog_topics  # noqa: E402  (this folder)
from run_state import drop_run_state  # noqa: E402

from shared.kafka.options import client_options  # noqa: E402
from shared.kafka.topics import Topic, ensure_topics, topic_name  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402

SHAPES = ("live", "backlog")
# quixstreams pins an older pydantic than the services: it runs from a venv of its own, made once
# from bench/peers/requirements.lock (hashes checked), beside the project's .venv.
PEERS_VENV = ROOT / ".venv" / ".peers"
PEERS_LOCK = HERE / "requirements.lock"


def peers_python() -> str:
    """The interpreter of the quixstreams venv, made (or brought up to the lock) when needed."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != PEERS_LOCK.read_text():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(PEERS_LOCK)],
                       check=True)
        stamp.write_text(PEERS_LOCK.read_text())
    return str(python)


def shape_minutes(shape: str, args: argparse.Namespace) -> float:
    """The event-time span that gives the shape's shares per worker-minute."""
    if shape == "live":
        return args.events / args.workers / args.live_per_minute
    return float(args.backlog_minutes)


def run_child(script: str, options: list[str], timeout_s: float) -> dict[str, Any]:
    """Run a peer job in its own process; its result comes back in a file."""
    with tempfile.TemporaryDirectory(prefix="peers-") as scratch:
        result = Path(scratch) / "result.json"
        python = peers_python() if script == "quix_job.py" else sys.executable
        command = [python, str(HERE / script), *options, "--result", str(result)]
        if script == "quix_job.py":
            command += ["--state-dir", str(Path(scratch) / "state")]
        try:
            done = subprocess.run(command, check=False, stdout=subprocess.DEVNULL, cwd=ROOT, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"completed": False, "timeout_s": timeout_s}
        if done.returncode != 0:
            return {"completed": False, "exit_code": done.returncode}
        if not result.exists():
            return {"completed": False}
        return {"completed": True, **json.loads(result.read_text())}


async def create_changelogs(settings: ServiceSettings, names: list[str]) -> None:
    """Compacted, co-partitioned with the share topic: what faust would create."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, settings.kafka_topic_partitions, settings.kafka_replication_factor,
                                            topic_configs={"cleanup.policy": "compact"}) for name in names])
    finally:
        await admin.close()


async def drop_internal_topics(settings: ServiceSettings) -> None:
    """quixstreams names its repartition and changelog topics `<kind>__<group>--...`: they hold
    the run's prefix inside the name, not at its start, so drop_run_state does not see them."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        prefix = settings.kafka_topic_prefix
        leftovers = [t for t in await admin.list_topics() if prefix in t]
        if leftovers:
            await admin.delete_topics(leftovers)
    finally:
        await admin.close()


def ours_rate(pipeline: dict[str, Any]) -> float | None:
    """The aggregator's steady rate; from its start when a small run finished before the
    first poll saw progress (aggregator_bench's steady rate is then 0)."""
    if not pipeline.get("completed"):
        return None
    return float(pipeline["rate_steady"] or pipeline["rate_from_start"])


async def run_shape(shape: str, args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    schema = prefix[:-1]
    settings = settings_for(prefix, schema, args.partitions)
    minutes = shape_minutes(shape, args)
    admin_conn = await asyncpg.connect(settings.database_url)
    await admin_conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        await ensure_topics(settings)
        produce_s = await produce(settings, args.events, args.workers, minutes)
        print(f"[{shape}] topics and schema {prefix}*; produced {args.events:,} shares ({args.workers:,} workers, "
              f"event times over {minutes * 60:,.0f}s: {args.events / args.workers / minutes:.1f} per worker-minute) "
              f"in {produce_s:.1f}s", flush=True)
        phase_args = argparse.Namespace(prefix=prefix, schema=schema, events=args.events,
                                        partitions=args.partitions, timeout=args.timeout)
        baseline = run_phase("baseline", phase_args)
        assert baseline is not None
        print(f"[{shape}] (a) bare aiokafka + orjson: {baseline['rate']:,.0f} events/s", flush=True)
        ours = run_phase("pipeline", phase_args) or {"completed": False}
        topic = topic_name(settings, Topic.SHARES)
        quix = run_child("quix_job.py", ["--broker", settings.kafka_bootstrap_servers, "--topic", topic,
                                         "--group", f"{prefix}quix", "--output", f"{prefix}quix-minutes",
                                         "--events", str(args.events)], args.timeout)
        # faust can be stopped after its first N shares (--faust-events): at a few hundred shares
        # a second it would otherwise take most of the run; its rate is then over those N
        faust_events = min(args.faust_events or args.events, args.events)
        await create_changelogs(settings, changelog_topics(f"{prefix}faust"))
        faust = run_child("faust_job.py", ["--app-id", f"{prefix}faust", "--broker", settings.kafka_bootstrap_servers,
                                           "--topic", topic, "--partitions", str(args.partitions),
                                           "--events", str(faust_events)], args.timeout)
    finally:
        await drop_run_state(settings, admin_conn, [schema])
        await drop_internal_topics(settings)
    out: dict[str, Any] = {"minutes": minutes, "per_worker_minute": args.events / args.workers / minutes,
                           "baseline": baseline, "pipeline": ours, "quix": quix, "faust": faust}
    ours_rate_s = ours_rate(ours)
    for name, label in (("quix", "(q) quixstreams job"), ("faust", "(f) faust job")):
        peer = out[name]
        if not peer.get("completed"):
            print(f"[{shape}] {label}: did not finish ({peer})", flush=True)
            continue
        versus = f", ours / it {ours_rate_s / peer['rate']:.1f}x" if ours_rate_s else ""
        print(f"[{shape}] {label}: {peer['rate']:,.0f} events/s, ratio to (a) "
              f"{peer['rate'] / baseline['rate']:.3f}{versus}", flush=True)
    if ours_rate_s:
        print(f"[{shape}] (c) services.aggregator: {ours_rate_s:,.0f} events/s steady, ratio to (a) "
              f"{ours_rate_s / baseline['rate']:.3f}", flush=True)
    else:
        print(f"[{shape}] (c) services.aggregator: did not finish", flush=True)
    return out


async def main(args: argparse.Namespace) -> None:
    shapes = {shape: await run_shape(shape, args) for shape in args.shapes}
    if args.json:
        print(json.dumps({"events": args.events, "workers": args.workers, "partitions": args.partitions,
                          "shapes": shapes}), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=20_000)
    parser.add_argument("--live-per-minute", type=float, default=30.0,
                        help="live shape: shares per worker-minute (aggregator_bench's --live-rate 50000)")
    parser.add_argument("--backlog-minutes", type=float, default=20.0,
                        help="backlog shape: event times over the last N minutes (aggregator_bench's default)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated: live, backlog")
    parser.add_argument("--faust-events", type=int, default=0,
                        help="stop the faust job after its first N shares (default: all of them)")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each phase may take")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures (bench/run_all.py)")
    args = parser.parse_args(argv)
    args.shapes = [s for s in args.shapes.split(",") if s]
    unknown = set(args.shapes) - set(SHAPES)
    if unknown:
        parser.error(f"unknown shapes: {', '.join(sorted(unknown))}")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
