"""How fast a faust-streaming agent reads the share topic, against bare aiokafka (a benchmark).

    source .chimera/stack.env && .venv/bin/python bench/faust_bench.py [--events 300000]

The basis of the aggregator's choice of aiokafka over faust agents (README,
Choices). Produces N share events (the shapes of aggregator_bench.py) to a
fresh prefixed topic set, then measures in the same run, each in a process
of its own:

(a) a bare aiokafka consumer that only decodes the records with orjson;
(b) a faust-streaming app (consumer group, one agent, raw values) whose agent
    does the same decoding in batches: `stream.take(10000, within=0.5)`, as
    the aggregator issue asks ("process in batches, not a coroutine per event").

Reported: records/s of each and the ratio of (b) to (a). Nothing is validated,
folded or written in either: this is the consumption layer alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from aggregator_bench import phase_baseline, produce, settings_for  # noqa: E402
from run_state import drop_run_state  # noqa: E402

from shared.kafka.topics import Topic, ensure_topics, topic_name  # noqa: E402


def faust_child(prefix: str, events: int, partitions: int, take: int, within_s: float, result: Path) -> None:
    """Runs in its own process: a faust worker until the agent has read `events` records."""
    import faust

    settings = settings_for(prefix, partitions=partitions)
    app = faust.App(
        f"{prefix}faust-bench", broker=f"kafka://{settings.kafka_bootstrap_servers}", value_serializer="raw",
        store="memory://", web_enabled=False, topic_partitions=partitions, consumer_auto_offset_reset="earliest",
        broker_max_poll_records=take, stream_buffer_maxsize=4 * take,
    )
    topic = app.topic(topic_name(settings, Topic.SHARES), value_type=bytes, value_serializer="raw")
    state: dict[str, Any] = {"count": 0, "began": None}

    @app.agent(topic)
    async def read(stream: Any) -> None:
        async for batch in stream.take(take, within=within_s):
            if state["began"] is None:
                state["began"] = time.perf_counter()
            for value in batch:
                orjson.loads(value)
            state["count"] += len(batch)
            if state["count"] >= events:
                elapsed = time.perf_counter() - state["began"]
                # (a faust worker redirects stdout into its log: the result goes to a file)
                result.write_text(json.dumps({"events": state["count"], "seconds": elapsed,
                                              "rate": state["count"] / elapsed}))
                os._exit(0)  # a benchmark child: the measurement is out, nothing to clean up

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


async def main(args: argparse.Namespace) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = settings_for(prefix, prefix[:-1], args.partitions)
    admin_conn = await asyncpg.connect(settings.database_url)
    try:
        await ensure_topics(settings)
        await produce(settings, args.events, args.workers, args.events / 50_000 / 60)
        baseline = await phase_baseline(settings)
        print(f"(a) bare aiokafka + orjson.loads: {baseline['rate']:,.0f} records/s")
        with tempfile.TemporaryDirectory() as scratch:
            result = Path(scratch) / "faust.json"
            command = [sys.executable, __file__, "--faust-child", prefix, "--result", str(result),
                       "--events", str(args.events), "--partitions", str(args.partitions), "--take", str(args.take)]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, timeout=args.timeout)
            agent = json.loads(result.read_text())
        print(f"(b) faust agent, stream.take({args.take}, within=0.5) + orjson.loads: {agent['rate']:,.0f} "
              f"records/s, ratio to (a) {agent['rate'] / baseline['rate']:.3f}")
        if args.json:
            print(json.dumps({"events": args.events, "take": args.take, "baseline": baseline, "faust": agent}),
                  flush=True)
    finally:
        await drop_run_state(settings, admin_conn, [])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--take", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures (bench/run_all.py)")
    parser.add_argument("--faust-child", metavar="PREFIX", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.faust_child:
        sys.argv = [sys.argv[0], "worker"]  # what faust's command line expects
        faust_child(arguments.faust_child, arguments.events, arguments.partitions, arguments.take, 0.5,
                    arguments.result)
    else:
        asyncio.run(main(arguments))
