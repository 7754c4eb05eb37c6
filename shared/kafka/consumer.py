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
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Literal, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalStateError,
    KafkaError,
)

from shared.kafka.options import KafkaClientError, client_options, is_retriable
from shared.kafka.topics import topic_name
from shared.settings import ServiceSettings

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


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
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            *self.topics,
            **client_options(self._settings),
            **({"client_id": self._client_id} if self._client_id else {}),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
            max_poll_records=self._max_records,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            max_poll_interval_ms=self._max_poll_interval_ms,
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise ConsumeError(
                f"cannot start consumer for {', '.join(self.topics)}: {exc!r}",
                retriable=is_retriable(exc),
                cause=exc,
            ) from exc
        self._consumer = consumer

    async def stop(self) -> None:
        """Leave the group and disconnect. Uncommitted records will be re-delivered. Idempotent."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    async def poll(self, timeout_ms: int | None = None) -> list[Record]:
        """One fetch: up to `max_records` records, possibly none, in order within each partition.

        For loops that need to wake up periodically (timers, window closes)
        even when no record arrives. Raises ConsumerStoppedError once stopped.
        """
        consumer = self._consumer
        if consumer is None:
            raise ConsumerStoppedError()
        try:
            fetched = await consumer.getmany(
                timeout_ms=self._poll_timeout_ms if timeout_ms is None else timeout_ms,
                max_records=self._max_records,
            )
        except KafkaError as exc:
            raise ConsumeError(
                f"fetch failed: {exc!r}", retriable=is_retriable(exc), cause=exc
            ) from exc
        return [record for records in fetched.values() for record in records]

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
        offsets = commit_offsets(batch)
        if not offsets:
            return
        consumer = self._consumer
        if consumer is None:
            raise CommitError("consumer is stopped", retriable=False, rebalanced=True)
        try:
            await consumer.commit(offsets)
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
