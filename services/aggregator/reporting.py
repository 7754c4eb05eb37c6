"""Building what the outputs hear about a durable batch (pure: no I/O).

Counts cover only the partitions whose transaction committed: the records of
a partition that was dropped will be read, and counted, again.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.kafka.consumer import Record
from shared.kafka.deadletter import DeadLetter
from shared.kafka.topics import Topic

from .domain.model import PoolAggregate
from .fold import Folded
from .results import BatchResult, PartitionResult

__all__ = ["base_topic", "batch_result"]


def base_topic(topic: str, prefix: str) -> str:
    return topic[len(prefix):] if prefix and topic.startswith(prefix) else topic


def batch_result(
    *,
    records: Mapping[int, Mapping[str, list[Record]]],
    committed: Mapping[int, Folded],
    models: Mapping[int, PoolAggregate],
    letters: list[DeadLetter],
    prefix: str,
    wall_ms: int,
) -> BatchResult:
    """`records`: partition -> full topic name -> the records folded; `models`: the live
    models of the committed partitions."""
    received: dict[str, int] = {}
    for p in committed:
        for topic, group in records[p].items():
            base = base_topic(topic, prefix)
            received[base] = received.get(base, 0) + len(group)
    dead: dict[str, int] = {}
    for letter in letters:
        if letter.record.partition in committed:
            base = base_topic(letter.record.topic, prefix)
            dead[base] = dead.get(base, 0) + 1
    duplicates: dict[str, int] = {}
    late = too_late = 0
    lags: list[int] = []
    partitions: dict[int, PartitionResult] = {}
    for p, f in committed.items():
        for base, n in ((Topic.SHARES, f.shares.duplicates if f.shares else 0),
                        (Topic.BLOCKS, f.blocks.duplicates if f.blocks else 0),
                        (Topic.MINERS, f.miner_duplicates)):
            if n:
                duplicates[base] = duplicates.get(base, 0) + n
        if f.shares is not None:
            late += f.shares.late
            too_late += f.shares.too_late
            lags.append(wall_ms - f.newest_share_ms)
        model = models.get(p)
        if model is not None:
            partitions[p] = PartitionResult(model, f.shares, f.blocks, tuple(f.connections))
    return BatchResult(
        partitions=partitions, received=received, duplicates=duplicates, dead_lettered=dead,
        late=late, too_late=too_late, batch_size=sum(received.values()), event_lag_ms=lags,
    )
