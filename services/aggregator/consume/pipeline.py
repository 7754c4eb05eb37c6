"""The aggregator's consume -> fold -> persist loop, exactly once.

Exactly once rests on PostgreSQL, not on Kafka: each batch's figures and the
input offsets they were derived from commit in ONE transaction, the offsets
by compare-and-set against what this member read when it took the partition
(adapters/store.py). A crash before the commit loses nothing (the records are
read again from the stored offsets); a crash after it counts nothing twice
(the stored offsets are past them); a member that lost a partition without
noticing fails its compare-and-set and writes nothing. Kafka's own committed
offsets only mirror the stored ones, for lag monitoring.

One loop task owns the consumer. While batch k's statement runs in
PostgreSQL, batch k+1 is decoded and folded into the models (one batch ahead
at most; k+1 is sent only once k committed). Folding, settling a batch and
rebalance callbacks take the same lock, so a partition is never revoked in
the middle of a batch: the revoke waits for the batch in flight.

When a batch's transaction fails (PostgreSQL down, a deadlock, a timeout) the
models of its partitions, which already hold it and maybe the next batch, are
dropped and taken over again from the database, with backoff, until
PostgreSQL answers: nothing is ever applied twice in memory, because memory
is rebuilt from what is durable instead of being patched.

Dead letters are sent (and acknowledged) before their batch is written, so a
failed batch may dead-letter the same record twice: at least once, by design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Final

from shared.background import spawn
from shared.backoff import Backoff
from shared.kafka.consumer import CommitError, ConsumeError, ConsumerStoppedError, Record, TopicPartition
from shared.kafka.deadletter import DeadLetter
from shared.kafka.producer import ProduceError
from shared.lifecycle import StartedParts

from ..config import AggregatorSettings
from ..errors import StoreError
from .columnar_decode import decode_for_fold
from .fold import Folded, fold_partition
from .partitions import Partitions
from .ports import BatchStore, DeadLetterSink, EffortTracker, RecordSource, WriteOutcome
from .results import BatchResult, Output, PartitionResult, PipelineStats, base_topic, batch_result

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)

# How often an idle loop tells the outputs the consumer lag (an idle partition's workers are
# judged at the time it was last known caught up).
LAG_REFRESH_S: Final = 1.0


@dataclass(slots=True)
class _Batch:
    groups: dict[int, dict[str, list[Record]]]  # partition -> topic -> records folded
    letters: list[DeadLetter]
    skipped: int
    wall_ms: int
    folds: dict[int, Folded] = field(default_factory=dict)
    write: asyncio.Task[WriteOutcome] | None = None
    started: float = 0.0


class _Rebalance:
    """The consumer's `Rebalance` handler: partition moves wait for the batch in flight."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pipeline = self._pipeline
        async with pipeline._lock:  # no batch is being folded; the one in flight commits or fails
            try:
                await pipeline._settle()
            except Exception as exc:  # noqa: BLE001 - aiokafka would only log it: the loop re-raises
                pipeline._fatal = exc
            pipeline.partitions.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._pipeline._lock:
            self._pipeline.partitions.assigned(assigned)


class Pipeline:
    """Owns the loop and the partition models. The consumer and the outputs are started
    and stopped by it; the store, the dead-letter sink and the effort tracker belong to
    the caller (bootstrap.py)."""

    def __init__(
        self,
        settings: AggregatorSettings,
        consumer: RecordSource,
        store: BatchStore,
        dead_letters: DeadLetterSink,
        effort: EffortTracker,
        *,
        outputs: Sequence[Output] = (),
        stats: PipelineStats | None = None,
        lag_refresh_s: float = LAG_REFRESH_S,
    ) -> None:
        self._settings = settings
        self._lag_refresh_s = lag_refresh_s
        self.consumer = consumer
        self._store = store
        self._dead_letters = dead_letters
        self._effort = effort
        self._outputs = list(outputs)
        self.stats = stats if stats is not None else PipelineStats()
        self._lock = asyncio.Lock()
        self.partitions = Partitions(settings, consumer, store, self.stats)
        self._prefix = settings.kafka_topic_prefix
        self._retry = Backoff(settings.aggregator_retry_initial_s, settings.aggregator_retry_max_s)
        self._takeover_at = 0.0
        self._kafka_offsets: dict[TopicPartition, int] = {}
        self._inflight: _Batch | None = None
        self._ready: list[BatchResult] = []
        self._fatal: BaseException | None = None
        self._kafka_committed_at = 0.0
        self._lag_emitted_at = 0.0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._parts = StartedParts()  # the outputs

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the outputs, join the group (the first assignment is taken over by the loop)."""
        if self._task is not None:
            return
        await self._parts.start(self._outputs)
        try:
            await self.consumer.start(_Rebalance(self))
        except BaseException:
            await self._parts.stop()
            raise
        self._task = spawn(self._run(), "aggregator-pipeline")  # a crash is logged when it happens

    async def stop(self) -> None:
        """Finish the batch in flight (commit it), leave the group, stop everything. Idempotent."""
        self._stopping.set()
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):  # a crash was already logged (spawn)
                await task
        batch, self._inflight = self._inflight, None  # left by a crash: its outcome no longer matters
        if batch is not None and batch.write is not None:
            with contextlib.suppress(Exception):
                await batch.write
        await self._commit_kafka(force=True)
        await self.consumer.stop()
        await self._parts.stop()

    async def wait(self) -> None:
        """Until the loop ends: returns after stop(), raises what crashed it."""
        if self._task is not None:
            await asyncio.shield(self._task)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- the loop --------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            if self._fatal is not None:
                raise self._fatal
            if self.partitions.pending and loop.time() >= self._takeover_at:
                async with self._lock:
                    await self._settle()  # a take-over reads the offsets the batch in flight writes
                    done = await self.partitions.take_over_pending()
                if done:
                    self._retry.reset()
                else:
                    self._takeover_at = loop.time() + self._retry.next()
            try:
                fetched = await self.consumer.poll_partitions()
            except ConsumerStoppedError:
                break
            except ConsumeError as exc:
                if not exc.retriable:
                    raise
                log.warning("fetch failed, retrying: %s", exc)
                await asyncio.sleep(self._retry.next())
                continue
            async with self._lock:
                # Fold batch k+1 while batch k's transaction runs, then wait for k, then
                # send k+1: the database works while this process computes.
                prepared = await self._prepare(fetched) if fetched else None
                await self._settle()
                if prepared is not None:
                    self._launch(prepared)
            await asyncio.sleep(0)  # lets the write task send its statement before we fold on
            self._emit_ready()
            await self._commit_kafka()
        async with self._lock:
            await self._settle()
        self._emit_ready()

    async def _prepare(self, fetched: dict[TopicPartition, list[Record]]) -> _Batch | None:
        """Decode, dead-letter and fold a fetch into the models (not yet durable)."""
        owned = self.partitions.owned
        groups: dict[int, dict[str, list[Record]]] = {}
        skipped = 0
        for tp, records in fetched.items():
            state = owned.get(tp.partition)
            expected = state.next_offsets.get(tp.topic) if state is not None else None
            if expected is None:  # not (yet) ours: it is paused until taken over
                skipped += len(records)
                continue
            if records[0].offset < expected:  # fetched before a seek, or a replay: counted
                first = next((i for i, r in enumerate(records) if r.offset >= expected), len(records))
                skipped += first
                records = records[first:]
            if records:
                groups.setdefault(tp.partition, {})[tp.topic] = records
        self.stats.skipped += skipped
        if not groups:
            return None
        flat = list(chain.from_iterable(group for topics in groups.values() for group in topics.values()))
        wall_ms = time.time_ns() // 1_000_000
        decoded = decode_for_fold(flat, wall_ms, self._settings)
        if decoded.letters and not await self._send_dead_letters(decoded.letters):
            return None  # stopping while Kafka refuses them: nothing was applied yet
        batch = _Batch(groups, decoded.letters, skipped, wall_ms)
        events = decoded.events
        start = 0
        for p, topics in groups.items():
            state = owned[p]
            runs = []
            for topic, records in topics.items():  # `flat` holds them in this order
                runs.append((topic, records, events[start:start + len(records)]))
                start += len(records)
            folded = batch.folds[p] = fold_partition(state.model, p, runs, dict(state.next_offsets))
            for move in folded.write.offsets:  # the model is now past these records
                state.next_offsets[move.topic] = move.next_offset
        return batch

    def _launch(self, batch: _Batch) -> None:
        owned = self.partitions.owned
        # A partition dropped since its fold (the previous batch failed for it) is not written.
        batch.folds = {p: f for p, f in batch.folds.items() if p in owned}
        if not batch.folds:
            return
        batch.started = time.perf_counter()
        batch.write = asyncio.create_task(self._store.write([f.write for f in batch.folds.values()]))
        self._inflight = batch

    async def _settle(self) -> None:
        """Wait for the batch in flight; on success queue its result, on failure drop the
        partitions it touched (their models ran ahead of the database)."""
        batch, self._inflight = self._inflight, None
        if batch is None or batch.write is None:
            return
        try:
            outcome = await batch.write
        except StoreError as exc:
            if not exc.retriable:
                self._fatal = exc
                raise
            self.stats.store_failures += 1
            log.warning("batch not stored (%s); rebuilding partitions %s from the database",
                        exc, sorted(batch.folds))
            self.partitions.drop(batch.folds)
            self._takeover_at = asyncio.get_running_loop().time() + self._retry.next()
            return
        flush_s = time.perf_counter() - batch.started
        if outcome.stale:
            log.warning("partitions %s were moved on by another member: dropped", outcome.stale)
            self.partitions.drop(outcome.stale)
        committed = {p: batch.folds[p] for p in outcome.committed}
        for p, folded in committed.items():
            for move in folded.write.offsets:
                self._kafka_offsets[TopicPartition(move.topic, p)] = move.next_offset
        found = [b.found_at_ms for f in committed.values() for b in f.write.blocks.values()]
        if found:
            self._effort.poke(min(found))
        owned = self.partitions.owned
        result = batch_result(
            records=batch.groups, committed=committed, letters=batch.letters, prefix=self._prefix,
            wall_ms=batch.wall_ms, models={p: owned[p].model for p in committed if p in owned},
        )
        result.flush_duration_s = flush_s
        result.skipped = batch.skipped
        result.rows = outcome.rows
        result.stale_partitions = tuple(outcome.stale)
        self.stats.add(result)
        self._ready.append(result)

    async def _send_dead_letters(self, letters: list[DeadLetter]) -> bool:
        backoff = Backoff(self._settings.aggregator_retry_initial_s, self._settings.aggregator_retry_max_s)
        while True:
            try:
                await self._dead_letters.send(letters)
                return True
            except ProduceError as exc:
                if not exc.retriable:
                    raise
                if self._stopping.is_set():
                    return False
                log.warning("dead letters not acknowledged, retrying: %s", exc)
                await asyncio.sleep(backoff.next())

    # --- results and outputs -----------------------------------------------------------

    def _emit_ready(self) -> None:
        """Hand the outputs every durable batch, and any change of partitions; when idle, the
        consumer lag once a second, so the outputs know how recent "caught up" is (workers
        are judged no later than that: export_figures.liveness_time_ms)."""
        ready, self._ready = self._ready, []
        taken, gone = self.partitions.take_changes()
        owned = self.partitions.owned
        now = time.monotonic()
        if ready:
            last = ready[-1]
            last.consumer_lag, last.consumer_lag_at_ms = self.consumer_lag(), time.time_ns() // 1_000_000
            last.revoked = tuple(sorted(gone))
            extra = {p: PartitionResult(owned[p].model) for p in taken if p in owned and p not in last.partitions}
            last.partitions = {**last.partitions, **extra}
        elif taken or gone or now - self._lag_emitted_at >= self._lag_refresh_s:
            ready = [BatchResult(partitions={p: PartitionResult(owned[p].model) for p in taken if p in owned},
                                 revoked=tuple(sorted(gone)), consumer_lag=self.consumer_lag(),
                                 consumer_lag_at_ms=time.time_ns() // 1_000_000)]
        else:
            return
        self._lag_emitted_at = now
        for result in ready:
            self._emit(result)

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """(base topic, partition) -> records between the model's position and the partition's end."""
        lag: dict[tuple[str, int], int] = {}
        for p, state in self.partitions.owned.items():
            for topic, offset in state.next_offsets.items():
                high = self.consumer.highwater(TopicPartition(topic, p))
                if high is not None:
                    lag[(base_topic(topic, self._prefix), p)] = max(high - offset, 0)
        return lag

    def _emit(self, result: BatchResult) -> None:
        for output in self._outputs:
            try:
                output.on_batch(result)
            except Exception:
                self.stats.output_failures += 1
                log.exception("output %s failed on a batch", type(output).__name__)

    async def _commit_kafka(self, *, force: bool = False) -> None:
        """Mirror the stored offsets into the group's Kafka offsets (lag tooling), best effort."""
        now = time.monotonic()
        if not self._kafka_offsets or (
            not force and now - self._kafka_committed_at < self._settings.aggregator_kafka_commit_interval_s
        ):
            return
        owned = self.partitions.owned
        offsets = {tp: o for tp, o in self._kafka_offsets.items() if tp.partition in owned}
        self._kafka_offsets = {}
        self._kafka_committed_at = now
        try:
            async with asyncio.timeout(5.0):
                await self.consumer.commit_offsets(offsets)
        except (CommitError, TimeoutError, ConsumerStoppedError) as exc:
            log.debug("Kafka offsets not mirrored (the database holds the real ones): %r", exc)
