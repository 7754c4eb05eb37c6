"""The job in faust-streaming, written the way its documentation shows (run as a child process).

    python bench/peers/faust_job.py --app-id ID --broker HOST:PORT --topic T --partitions P \
        --events N --result FILE

One agent over the share topic (values decoded into a `faust.Record`),
iterating event by event, as windowed tables require: a table operation reads
the current event for its time and its partition, which `stream.take()`
batches would not give. Two windowed tables keyed by worker, tumbling one
minute and relative to the share's own time (`relative_to` a callable: the
`ts` field is in milliseconds and faust windows count seconds, so
`relative_to_field(Share.ts)` would put every share in the wrong window),
`+=` the accepted count and the accepted difficulty. The tables live in
memory with their changelog topics (faust's durability; the benchmark creates
them beforehand, as a deployment would: faust creating them itself raced its
own metadata on a fresh broker, PartitionsMismatch). The topic is keyed by
miner, so a worker's shares all arrive on one partition and no repartition is
needed. Defaults everywhere else.

Timed from the first share to the last one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from job import WINDOW_MS, Progress, worker_key  # noqa: E402  (this folder)

TABLES = ("accepted-count", "accepted-difficulty")


def changelog_topics(app_id: str) -> list[str]:
    """faust's names for the tables' changelog topics (`<app id>-<table>-changelog`)."""
    return [f"{app_id}-{table}-changelog" for table in TABLES]


def run(args: argparse.Namespace) -> None:
    import faust

    class Share(faust.Record, serializer="json"):
        event_id: str
        type: str
        ts: int
        pool: str
        node: str
        miner: str
        worker: str
        difficulty: float
        status: str

    def event_time(event: Any) -> float:
        return float(event.value.ts) / 1000

    app = faust.App(args.app_id, broker=f"kafka://{args.broker}", store="memory://", web_enabled=False,
                    topic_partitions=args.partitions, consumer_auto_offset_reset="earliest")
    shares = app.topic(args.topic, value_type=Share)
    window = timedelta(milliseconds=WINDOW_MS)
    counts = app.Table(TABLES[0], default=int).tumbling(window, expires=timedelta(hours=1)) \
        .relative_to(event_time)
    difficulty = app.Table(TABLES[1], default=float).tumbling(window, expires=timedelta(hours=1)) \
        .relative_to(event_time)
    progress = Progress(expected=args.events)

    @app.agent(shares)
    async def fold(stream: Any) -> None:
        try:
            async for share in stream:
                progress.first()
                if share.status == "accepted":
                    key = worker_key(share.miner, share.worker)
                    counts[key] += 1
                    difficulty[key] += share.difficulty
                if progress.count():
                    progress.write(args.result, args.events)
                    os._exit(0)  # a benchmark child: the measurement is out, nothing to clean up
        except Exception:
            # a crashed agent leaves the faust worker running idle: end the process, so the
            # benchmark records a failure now instead of waiting out its timeout
            logging.getLogger(__name__).exception("the faust job failed")
            os._exit(1)

    sys.argv = [sys.argv[0], "worker"]  # what faust's command line expects
    # ERROR, not WARNING: faust warns "producer buffer full" every ~40 ms of this job, thousands of lines a run
    faust.Worker(app, loglevel="ERROR", quiet=True).execute_from_commandline()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse_args())
