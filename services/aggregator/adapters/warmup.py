"""Re-reading a partition's recent records to warm up a new owner's deduplicator.

A member that takes over a partition starts at the offsets stored with the
figures, but a retry of an event counted just before the takeover must still
be recognised. So it re-reads the records that arrived within the dedup
horizon (plus a slack, by Kafka timestamp) before the stored offset, and
feeds their event ids to the deduplicator only: nothing is counted again.

A reader of its own (no consumer group, manual assignment), so the group
member's positions and fetch buffers are never disturbed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from shared.kafka.consumer import Record
from shared.kafka.options import client_options, is_retriable
from shared.settings import ServiceSettings

from ..errors import WarmupError

__all__ = ["RecordReplayer"]


class RecordReplayer:
    """Reads [first record at or after a time, end offset) of topic-partitions."""

    def __init__(self, settings: ServiceSettings, *, timeout_s: float = 120.0,
                 max_records: int = 20_000) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()  # one replay at a time: assign() replaces the assignment

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max_records,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise WarmupError(f"cannot start the replay reader: {exc!r}",
                              retriable=is_retriable(exc), partition=-1, cause=exc) from exc
        self._consumer = consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def replay(
        self,
        partition: int,
        ranges: Mapping[TopicPartition, tuple[int, int]],
        feed: Callable[[Sequence[Record]], None],
    ) -> int:
        """For each tp: (from Kafka timestamp ms, end offset). Calls `feed` with the
        records in offset order per tp; returns how many were fed."""
        consumer = self._consumer
        if consumer is None:
            raise WarmupError("replay reader is not started", retriable=False, partition=partition)
        async with self._lock:
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await self._replay(consumer, ranges, feed)
            except (KafkaError, TimeoutError) as exc:
                raise WarmupError(
                    f"replaying partition {partition} failed: {exc!r}",
                    retriable=isinstance(exc, TimeoutError) or is_retriable(exc),
                    partition=partition, cause=exc,
                ) from exc
            finally:
                consumer.unsubscribe()  # also clears a manual assignment

    @staticmethod
    async def _replay(
        consumer: AIOKafkaConsumer,
        ranges: Mapping[TopicPartition, tuple[int, int]],
        feed: Callable[[Sequence[Record]], None],
    ) -> int:
        wanted = {tp: end for tp, (_, end) in ranges.items() if end > 0}
        if not wanted:
            return 0
        found = await consumer.offsets_for_times(
            {tp: max(ranges[tp][0], 0) for tp in wanted}
        )
        work: dict[TopicPartition, int] = {}
        starts: dict[TopicPartition, int] = {}
        for tp, end in wanted.items():
            hit = found.get(tp)
            # None: no record at or after that time, i.e. nothing recent to re-read.
            if hit is not None and hit.offset < end:
                work[tp] = end
                starts[tp] = hit.offset
        if not work:
            return 0
        consumer.assign(list(work))
        for tp, start in starts.items():
            consumer.seek(tp, start)
        fed = 0
        while work:
            fetched = await consumer.getmany(*work, timeout_ms=1000)
            for tp, records in fetched.items():
                end = work.get(tp)
                if end is None:
                    continue
                keep = [r for r in records if r.offset < end]
                if keep:
                    feed(keep)
                    fed += len(keep)
            for tp in list(work):
                # Position, not the last record: offsets may have gaps (transaction markers).
                if await consumer.position(tp) >= work[tp]:
                    del work[tp]
                    consumer.pause(tp)
        return fed
