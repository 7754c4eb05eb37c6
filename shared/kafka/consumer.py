"""Consuming in batches with manual, at-least-once commits.

The pattern every consumer of the project follows::

    consumer = BatchConsumer(settings, [Topic.SHARES], "aggregator")
    await consumer.start()
    try:
        async for batch in consumer.batches():
            results = process(batch)
            await store(results)          # durable first (database, Kafka acks=all)
            await consumer.commit(batch)  # only then move the group's position
    finally:
        await consumer.stop()

Auto-commit is off: an offset is committed only after what was derived from
the record is durable, so a crash between the two re-delivers the batch
instead of losing it. Consumers therefore see some records twice after a
crash or a rebalance and must be idempotent (events carry `event_id` for that).

Consumers that keep their positions elsewhere (the aggregator stores them in
PostgreSQL with its figures) start with a `Rebalance` handler, choose the
`partition_assignment_strategy`, and move with `seek`/`pause`/`resume`;
`commit_offsets` then only mirrors those positions for lag monitoring.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeAlias

from aiokafka import (
    AIOKafkaConsumer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalStateError,
    KafkaError,
)

from shared.kafka.options import KafkaClientError, client_options, is_retriable
from shared.kafka.topics import topic_name
from shared.settings import ServiceSettings

__all__ = [
    "BatchConsumer",
    "CommitError",
    "ConsumeError",
    "ConsumerStoppedError",
    "Rebalance",
    "Record",
    "TopicPartition",
    "commit_offsets",
]

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


class Rebalance(Protocol):
    """Told of the group's partition moves, inside the poll that makes them: a
    revocation waits for the handler, so work in flight can finish first."""

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None: ...

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None: ...


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's listener class, handing the moves to a `Rebalance`."""

    def __init__(self, handler: Rebalance) -> None:
        self._handler = handler

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._handler.on_partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._handler.on_partitions_assigned(set(assigned))


class ConsumeError(KafkaClientError):
    """The consumer could not connect or fetch."""


class CommitError(ConsumeError):
    """Offsets were not committed.

    `rebalanced` is true when the partitions now belong to another member (or
    to nobody): that member will re-deliver the records, so the caller should
    drop its in-flight work for them rather than retry the commit.
    """

    def __init__(
        self,
        message: str,
        *,
        retriable: bool,
        cause: BaseException | None = None,
        rebalanced: bool = False,
    ) -> None:
        super().__init__(message, retriable=retriable, cause=cause)
        self.rebalanced = rebalanced


def commit_offsets(batch: Sequence[Record]) -> dict[TopicPartition, int]:
    """The offsets that mark every record of `batch` as done: highest offset + 1 per partition."""
    offsets: dict[TopicPartition, int] = {}
    for record in batch:
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


class BatchConsumer:
    """A consumer-group member over the given base topics (`Topic.*`), committing manually.

    Topic names and the group id both get `settings.kafka_topic_prefix`, so
    groups of different prefixes never meet on a shared broker.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        topics: Sequence[str],
        group_id: str,
        *,
        max_records: int = 500,
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        poll_timeout_ms: int = 1_000,
        client_id: str | None = None,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_interval_ms: int = 300_000,
        partition_assignment_strategy: Sequence[type[AbstractPartitionAssignor]] | None = None,
        max_partition_fetch_bytes: int = 1024 * 1024,
        fetch_max_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        if not topics:
            raise ValueError("at least one topic is required")
        if max_records < 1:
            raise ValueError("max_records must be positive")
        self._settings = settings
        self.topics = [topic_name(settings, base) for base in topics]
        self.group_id = topic_name(settings, group_id)
        self._max_records = max_records
        self._auto_offset_reset = auto_offset_reset
        self._poll_timeout_ms = poll_timeout_ms
        self._client_id = client_id
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._max_poll_interval_ms = max_poll_interval_ms
        self._listener: _Listener | None = None
        self._assignors = tuple(partition_assignment_strategy or ())
        self._max_partition_fetch_bytes = max_partition_fetch_bytes
        self._fetch_max_bytes = fetch_max_bytes
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self, rebalance: Rebalance | None = None) -> None:
        """Join the group; with `rebalance`, its handler hears of every partition move
        (the first assignment included, before this returns)."""
        if self._consumer is not None:
            return
        self._listener = _Listener(rebalance) if rebalance is not None else None
        extra: dict[str, Any] = {}
        if self._assignors:
            extra["partition_assignment_strategy"] = self._assignors
        # With a listener the subscription is made by subscribe() (below), which
        # is the only way to attach one; start() then waits for the first assignment.
        consumer = AIOKafkaConsumer(
            *(() if self._listener is not None else self.topics),
            **client_options(self._settings),
            **extra,
            **({"client_id": self._client_id} if self._client_id else {}),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
            max_poll_records=self._max_records,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            max_poll_interval_ms=self._max_poll_interval_ms,
            max_partition_fetch_bytes=self._max_partition_fetch_bytes,
            fetch_max_bytes=self._fetch_max_bytes,
        )
        if self._listener is not None:
            consumer.subscribe(self.topics, listener=self._listener)
        # Set before start(): the listener runs for the first assignment inside it
        # and may pause or seek through this object.
        self._consumer = consumer
        try:
            await consumer.start()
        except BaseException as exc:
            self._consumer = None
            await consumer.stop()
            if not isinstance(exc, KafkaError):
                raise
            raise ConsumeError(
                f"cannot start consumer for {', '.join(self.topics)}: {exc!r}",
                retriable=is_retriable(exc),
                cause=exc,
            ) from exc

    async def stop(self) -> None:
        """Leave the group and disconnect. Uncommitted records will be re-delivered. Idempotent."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise ConsumerStoppedError()
        return self._consumer

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Fetch `tp` from `offset` next (records fetched before are discarded)."""
        self._started().seek(tp, offset)

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        """No-op once stopped: leaving the group can still hand a stopping member an
        assignment (another member left at the same time), and nothing is fetched any more."""
        if self._consumer is not None:
            self._consumer.pause(*tps)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        self._started().resume(*tps)

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end offset as of the last fetch (None before any fetch)."""
        consumer = self._consumer
        if consumer is None or tp not in consumer.assignment():
            return None
        return consumer.highwater(tp)

    async def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The oldest offset still held by the broker for each partition."""
        try:
            return dict(await self._started().beginning_offsets(list(tps)))
        except KafkaError as exc:
            raise ConsumeError(
                f"cannot read beginning offsets: {exc!r}", retriable=is_retriable(exc), cause=exc
            ) from exc

    async def poll(self, timeout_ms: int | None = None) -> list[Record]:
        """One fetch: up to `max_records` records, possibly none, in order within each partition.

        For loops that need to wake up periodically (timers, window closes)
        even when no record arrives. Raises ConsumerStoppedError once stopped.
        """
        fetched = await self.poll_partitions(timeout_ms)
        return [record for records in fetched.values() for record in records]

    async def poll_partitions(self, timeout_ms: int | None = None) -> dict[TopicPartition, list[Record]]:
        """Like `poll`, grouped by partition (records in offset order within each)."""
        consumer = self._consumer
        if consumer is None:
            raise ConsumerStoppedError()
        try:
            return await consumer.getmany(
                timeout_ms=self._poll_timeout_ms if timeout_ms is None else timeout_ms,
                max_records=self._max_records,
            )
        except KafkaError as exc:
            raise ConsumeError(
                f"fetch failed: {exc!r}", retriable=is_retriable(exc), cause=exc
            ) from exc

    async def batches(self) -> AsyncIterator[list[Record]]:
        """Non-empty batches until the consumer is stopped. Commit each with `commit(batch)`."""
        while self._consumer is not None:
            try:
                batch = await self.poll()
            except ConsumerStoppedError:
                return
            if batch:
                yield batch

    async def commit(self, batch: Sequence[Record]) -> None:
        """Commit exactly the records of `batch` as processed (once their results are durable)."""
        await self.commit_offsets(commit_offsets(batch))

    async def commit_offsets(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the given next-record offsets (same errors as `commit`)."""
        if not offsets:
            return
        consumer = self._consumer
        if consumer is None:
            raise CommitError("consumer is stopped", retriable=False, rebalanced=True)
        try:
            await consumer.commit(dict(offsets))
        except (CommitFailedError, IllegalStateError) as exc:
            # The group moved on (partition revoked or reassigned): whoever owns the
            # partitions now starts from the last committed offset.
            raise CommitError(
                f"partitions no longer assigned, commit dropped: {exc!r}",
                retriable=False,
                cause=exc,
                rebalanced=True,
            ) from exc
        except KafkaError as exc:
            raise CommitError(
                f"commit failed: {exc!r}", retriable=is_retriable(exc), cause=exc
            ) from exc
