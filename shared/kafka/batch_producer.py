"""EventProducer over aiokafka's batch API: one delivery future per partition, not per record.

`AIOKafkaProducer.send` costs a coroutine, a future and a partitioner call per
record; for a 1,000-event request that is most of the produce path's CPU.
`BatchApiProducer` instead appends records to one open `BatchBuilder` per
(topic, partition), shared by concurrent calls, and submits it with
`send_batch`: a call waits on one future per partition it touched. Sharing
matters: aiokafka sends one request per broker at a time and queues one batch
per partition, so builders private to each call would wait in line, one
round trip each (measured: enqueue timeouts with 8 concurrent callers).
A builder takes records until it is submitted, which happens as soon as the
accumulator accepts it (after the partition's previous batch left).
Everything else (acks=all, idempotence, compression, the timeout and error
reporting of `send_batch`) is EventProducer's own.

Records land where `send` would put them: keyed records go to the partition
aiokafka's `DefaultPartitioner` (murmur2, as the Java client) gives; within a
call a key's records keep their order in their builder, and builders of one
partition are queued in call order, so order per key holds as with `send`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from shared.kafka.producer import EventProducer, OutgoingRecord

# AIOKafkaProducer's default max_request_size, which EventProducer keeps.
_MAX_REQUEST_SIZE = 1_048_576

# Keys are miners: a bounded but large set. The cache spares the pure-Python
# murmur2 for keys seen before; cleared when full rather than evicting one by one.
_PARTITION_CACHE_MAX = 1 << 16


class KeyPartitioner:
    """aiokafka's DefaultPartitioner with a cache for keyed records (the hash is pure Python)."""

    def __init__(self, max_entries: int = _PARTITION_CACHE_MAX) -> None:
        self._partitioner = DefaultPartitioner()
        self._cache: dict[tuple[bytes, int], int] = {}
        self._max_entries = max_entries

    def __call__(self, key: bytes | None, partitions: Sequence[int]) -> int:
        """The partition for `key` among `partitions` (sorted); random for key None, as aiokafka."""
        if key is None:
            return int(self._partitioner(None, list(partitions), list(partitions)))
        cache_key = (key, len(partitions))
        partition = self._cache.get(cache_key)
        if partition is None:
            partition = int(self._partitioner(key, list(partitions), list(partitions)))
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
            self._cache[cache_key] = partition
        return partition


class _Slot:
    """An open builder for one partition, and the outcome every call that wrote into it awaits."""

    __slots__ = ("builder", "submitted", "acknowledged", "after")

    def __init__(self, builder: BatchBuilder, after: _Slot | None) -> None:
        self.builder = builder
        # Set once the accumulator holds the builder (or it never will): the next
        # builder of the partition is submitted only then, keeping order per key.
        self.submitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acknowledged: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.after = after

    def settle_from(self, delivery: asyncio.Future[object]) -> None:
        if self.acknowledged.done():
            return
        if delivery.cancelled():
            self.acknowledged.set_exception(KafkaConnectionError("batch delivery was cancelled"))
        elif (error := delivery.exception()) is not None:
            self.acknowledged.set_exception(error)
        else:
            self.acknowledged.set_result(None)

    def fail(self, error: BaseException) -> None:
        for future in (self.submitted, self.acknowledged):
            if not future.done():
                future.set_exception(error)
        # Those who wrote into this slot observe the failure; no one else must.
        self.submitted.add_done_callback(_observed)


def _observed(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class BatchApiProducer(EventProducer):
    """EventProducer that enqueues records into one shared batch per partition."""

    # Shared by every instance: a partition is a pure function of key and partition count.
    _partition_for = KeyPartitioner()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The unsubmitted builder of each (topic, partition), if any.
        self._open: dict[tuple[str, int], _Slot] = {}

    async def stop(self) -> None:
        # A restarted producer must not append to the old one's builders.
        self._open = {}
        await super().stop()

    async def _enqueue(
        self,
        producer: AIOKafkaProducer,
        records: Iterable[tuple[str, bytes | None, bytes] | OutgoingRecord],
        deliveries: list[asyncio.Future[object]],
    ) -> None:
        partitions_of: dict[str, list[int]] = {}
        touched: dict[int, _Slot] = {}
        created: list[tuple[str, int, _Slot]] = []
        try:
            for record in records:
                topic, key, value, *rest = record
                headers = list(rest[0]) if rest else []
                partitions = partitions_of.get(topic)
                if partitions is None:
                    partitions = sorted(await producer.partitions_for(topic))
                    partitions_of[topic] = partitions
                # send() refuses such a record before compression; so must we (a
                # compressible one would otherwise pass, unlike with send()).
                if DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers) > _MAX_REQUEST_SIZE:
                    raise MessageSizeTooLargeError(
                        f"record of {len(value)} bytes is larger than max_request_size"
                    )
                tp = (topic, self._partition_for(key, partitions))
                slot = self._open.get(tp)
                if slot is None or slot.builder.append(
                        timestamp=None, key=key, value=value, headers=headers) is None:
                    builder = producer.create_batch()
                    if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
                        # An empty builder refuses only a record larger than max_batch_size.
                        raise MessageSizeTooLargeError(
                            f"record of {len(value)} bytes does not fit a batch of this producer"
                        )
                    slot = _Slot(builder, after=slot)
                    self._open[tp] = slot
                    created.append((*tp, slot))
                if id(slot) not in touched:
                    touched[id(slot)] = slot
                    deliveries.append(slot.acknowledged)
        finally:
            # Even when this call fails midway: other calls may have written into
            # the builders it opened, and wait for them to be sent.
            await self._submit_all(producer, created)

    async def _submit_all(self, producer: AIOKafkaProducer, created: list[tuple[str, int, _Slot]]) -> None:
        for index, (topic, partition, slot) in enumerate(created):
            try:
                await self._submit(producer, topic, partition, slot)
            except BaseException as exc:  # noqa: BLE001 - re-raised after settling the rest
                # Cancelled or timed out midway: the builders not yet submitted must
                # not stay open, or every later call would join a batch never sent.
                for rest_topic, rest_partition, rest in created[index + 1:]:
                    self._forget(rest_topic, rest_partition, rest, exc)
                raise

    def _forget(self, topic: str, partition: int, slot: _Slot, cause: BaseException) -> None:
        """Fail a slot that will never be submitted, so its writers learn it at once."""
        slot.fail(cause if isinstance(cause, Exception) else KafkaConnectionError(f"batch not sent: {cause!r}"))
        if self._open.get((topic, partition)) is slot:
            del self._open[(topic, partition)]

    async def _submit(self, producer: AIOKafkaProducer, topic: str, partition: int, slot: _Slot) -> None:
        """Hand `slot` to the accumulator after its predecessor; settle it however that ends."""
        try:
            if slot.after is not None:
                # Its failure is reported to its own writers; the order is all that matters here.
                await asyncio.wait([slot.after.submitted])
                slot.after = None
            delivery = await producer.send_batch(slot.builder, topic, partition=partition)
        except BaseException as exc:  # noqa: BLE001 - re-raised; other writers must not wait for ever
            self._forget(topic, partition, slot, exc)
            raise
        # No await since the accumulator took it: no other call has appended meanwhile.
        slot.builder.close()
        if self._open.get((topic, partition)) is slot:
            del self._open[(topic, partition)]
        slot.submitted.set_result(None)
        delivery.add_done_callback(slot.settle_from)
