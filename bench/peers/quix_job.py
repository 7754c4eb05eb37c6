"""The job in quixstreams, written the way its documentation shows (run as a child process).

    python bench/peers/quix_job.py --broker HOST:PORT --topic T --group G --output T2 \
        --events N --state-dir DIR --result FILE

A StreamingDataFrame over the share topic (JSON values, event time taken from
the value's `ts` by the topic's timestamp extractor): keep accepted shares,
`group_by` the worker (the topic is keyed by miner; quixstreams windows group by
the message key, so re-keying is a repartition through an internal topic, as
the library does it), a one-minute tumbling window aggregating `Count()` and
`Sum("difficulty")` in its RocksDB state (with its changelog topic), and each
closed window (`final()`) to an output topic. Defaults everywhere else
(at-least-once, commit every 5 s).

Timed from the first share read to the last accepted share reaching the window.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from job import WINDOW_MS, Progress, accepted_in, worker_key  # noqa: E402  (this folder)


def event_time(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    """The share's own time, not the broker's: windows are in event time."""
    return int(value["ts"])


def run(args: argparse.Namespace) -> None:
    from quixstreams import Application
    from quixstreams.dataframe.windows import Count, Sum

    app = Application(
        broker_address=args.broker, consumer_group=args.group, auto_offset_reset="earliest",
        state_dir=args.state_dir, loglevel="WARNING",
    )
    shares = app.topic(args.topic, value_deserializer="json", timestamp_extractor=event_time)
    minutes = app.topic(args.output, value_serializer="json")
    read = Progress(expected=args.events)
    folded = Progress(expected=accepted_in(args.events))

    def on_read(_: Any) -> None:
        read.first()
        folded.first()
        read.count()

    def on_folded(_: Any) -> None:
        if folded.count():
            app.stop()  # every accepted share is in its window: the measurement is over

    sdf = app.dataframe(shares)
    sdf = sdf.update(on_read)
    sdf = sdf[sdf["status"] == "accepted"]
    sdf = sdf.group_by(lambda share: worker_key(share["miner"], share["worker"]), name="worker")
    sdf = sdf.update(on_folded)
    sdf = sdf.tumbling_window(duration_ms=WINDOW_MS).agg(shares=Count(), difficulty=Sum("difficulty")).final()
    sdf = sdf.to_topic(minutes)
    app.run()
    folded.extra = {"read": read.seen}
    folded.write(args.result, args.events)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--result", type=Path, required=True)
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse_args())
