"""What the batch path needs from the world, as Protocols the adapters implement.

The pipeline and the partition take-over talk to PostgreSQL, Kafka and the
effort refresher only through these; `bootstrap.py` picks the concrete
adapters (adapters/store.py, shared/kafka's BatchConsumer and
DeadLetterProducer, adapters/maintenance.py) and the unit tests hand in small
fakes that record their calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from shared.kafka.consumer import Rebalance, Record, TopicPartition
from shared.kafka.deadletter import DeadLetter

from ..domain.blocks import BlockRecord
from ..domain.dedup import IdJournal
from ..domain.minutes import MinuteStats, WorkerMinuteKey
from .writes import PartitionWrite, WorkerStatusRow

__all__ = [
    "BatchStore",
    "DeadLetterSink",
    "EffortTracker",
    "PartitionControl",
    "RecordSource",
    "StoredPartition",
    "StoredPosition",
    "WriteOutcome",
]


@dataclass(frozen=True, slots=True)
class StoredPosition:
    """An input topic-partition's position as stored with the figures."""

    next_offset: int
    last_record_ts_ms: int | None
    watermark_ms: int | None


@dataclass(slots=True)
class WriteOutcome:
    committed: list[int] = field(default_factory=list)  # partitions written
    stale: list[int] = field(default_factory=list)  # partitions another member moved on
    rows: dict[str, int] = field(default_factory=dict)  # rows upserted per table


@dataclass(slots=True)
class StoredPartition:
    """What a new owner of an input partition reads back to rebuild its model."""

    workers: list[WorkerStatusRow] = field(default_factory=list)  # liveness rows
    minutes: dict[WorkerMinuteKey, MinuteStats] = field(default_factory=dict)  # minute/hour history
    blocks: list[BlockRecord] = field(default_factory=list)  # oldest first, as stored
    journals: dict[str, list[IdJournal]] = field(default_factory=dict)  # event type -> in order


class BatchStore(Protocol):
    """The figures and the input positions, made durable together."""

    async def write(self, writes: Sequence[PartitionWrite]) -> WriteOutcome:
        """One transaction for the batch; the partitions whose stored offsets moved since
        they were claimed are left out (stale). Raises StoreError, having written nothing."""

    async def ensure_offsets(
        self, starts: Mapping[tuple[str, int], int], partitions: tuple[int, ...] = ()
    ) -> dict[tuple[str, int], StoredPosition]:
        """The stored positions of (topic, partition), created at `starts` where missing."""

    async def load_partition(self, partition: int, watermark_ms: int) -> StoredPartition:
        """The partition's durable state as of its share watermark."""


class PartitionControl(Protocol):
    """The consumer as a partition take-over moves it."""

    def pause(self, tps: Iterable[TopicPartition]) -> None: ...

    def resume(self, tps: Iterable[TopicPartition]) -> None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    async def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]: ...


class RecordSource(PartitionControl, Protocol):
    """The consumer as the pipeline drives it (a group member over the input topics)."""

    async def start(self, rebalance: Rebalance | None = None) -> None: ...

    async def stop(self) -> None: ...

    async def poll_partitions(self) -> dict[TopicPartition, list[Record]]: ...

    def highwater(self, tp: TopicPartition) -> int | None: ...

    async def commit_offsets(self, offsets: Mapping[TopicPartition, int]) -> None: ...


class DeadLetterSink(Protocol):
    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Returns once the broker acknowledged every letter; raises ProduceError."""


class EffortTracker(Protocol):
    def poke(self, found_ms: int) -> None:
        """A batch wrote blocks found at `found_ms` or later: refresh their effort soon."""
