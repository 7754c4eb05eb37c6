"""faust's Kafka transport with three delivery bugs mended, found by the alerter's hand-over test.

Each lost state across a rebalance or a stop, on a loaded machine:

- **The producer buffer's flush gave up.** A table change reaches its
  changelog through the producer's buffer, and the consumer flushes that
  buffer before committing the offsets of the records that made the changes.
  faust's flush returns once 0.1 s pass without a send, records still
  buffered (and one taken from the queue, not yet handed to the Kafka client,
  is not counted at all): the offsets were committed before the changelog had
  the state they produced, and a member that then stopped handed stale state
  over. `DrainingBuffer.flush` waits until every change is in the client's
  hands (the client's own flush, which follows, delivers it), or raises when it
  never can be.

- **Records fetched before a seek got past it.** After a rebalance faust seeks
  the stream partitions back to their committed offsets with the consumer's
  flow still running, so records fetched before the seek go on to the streams
  and move the consumer's read offset past the seek point; the same records,
  fetched again, are then dropped as already read, while the queues the
  streams read are cleared when the flow resumes. The member that took a
  partition over lost those records for good (the alerter: workers back
  online whose alerts never resolved) and its commits for the partition
  stalled at the first of them. `SeekingConsumer.perform_seek` stops the flow
  first; both of faust's callers resume it once the seek is done.

- **A partition with nothing committed was not sought at all.** aiokafka's
  seek to the committed offsets skips a partition whose committed offset is
  none (or 0), so the records fetched before the seek and cleared from the
  streams' queues were never fetched again: lost until the next restart.
  `SeekingConsumer.seek_to_committed` seeks those to the start of the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as driver
from faust.transport.producer import ProducerBuffer
from faust.types.tuples import FutureMessage

__all__ = ["ChangelogNotSent", "DrainingBuffer", "SeekingConsumer", "Transport"]


class ChangelogNotSent(RuntimeError):
    """Table changes still buffered while the producer stops: the offsets they belong to are not
    committed, so a restart processes those records again."""

    retriable = False

    def __init__(self, buffered: int) -> None:
        super().__init__(f"{buffered} table changes not sent: the producer is stopping")
        self.buffered = buffered


class DrainingBuffer(ProducerBuffer):  # type: ignore[misc]  # faust is untyped
    def __post_init__(self) -> None:
        super().__post_init__()
        self._sending = 0  # taken from the queue, not yet handed to the client

    async def _send_pending(self, fut: FutureMessage) -> None:
        self._sending += 1
        try:
            await super()._send_pending(fut)
        finally:
            self._sending -= 1

    async def flush(self) -> None:
        while self.size or self._sending:
            if self.state != "running":
                raise ChangelogNotSent(self.size + self._sending)
            self.message_sent.clear()
            try:  # bounded, to look at the state again
                await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)
            except asyncio.TimeoutError:
                continue


class DrainingProducer(driver.Producer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.app.conf.producer_threaded:  # the threaded producer keeps a queue of its own
            self.buffer = DrainingBuffer(loop=self.loop, beacon=self.beacon)
            self.buffer.app = self.app


class SeekingConsumer(driver.Consumer):  # type: ignore[misc]
    async def perform_seek(self) -> None:
        self.stop_flow()
        await super().perform_seek()

    async def seek_to_committed(self) -> Mapping[Any, int | None]:
        """aiokafka seeks nowhere for a partition with no committed offset (or 0), leaving the
        position after whatever was fetched and then cleared from the streams' queues: those
        records were never fetched again. With nothing committed, the committed position is the
        start of the log (the apps reset to `earliest`). Changelog partitions keep the position
        their recovery left."""
        committed: Mapping[Any, int | None] = await super().seek_to_committed()
        never = [tp for tp, offset in committed.items() if not offset and not self._is_changelog_tp(tp)]
        if never:
            await self._thread.call_thread(_seek_to_log_start, self._thread._ensure_consumer(), never)
        return committed


async def _seek_to_log_start(consumer: Any, partitions: list[Any]) -> None:
    # An explicit offset, not seek_to_beginning: that leaves the position unknown until the next
    # fetch resolves it, and faust's livelock check reads positions in between (and fails).
    for tp, offset in (await consumer.beginning_offsets(partitions)).items():
        consumer.seek(tp, offset)


class Transport(driver.Transport):  # type: ignore[misc]
    Consumer = SeekingConsumer
    Producer = DrainingProducer
