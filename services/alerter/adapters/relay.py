"""The outbox relay: `alert_events` rows to `chimera.alerts`, keyed by fingerprint.

Rows go out in id order, in batches, acks=all; a batch is marked published
only once Kafka acknowledged all of it. Kafka away: nothing is marked, the
next pass sends the same rows (identical records: consumers drop repeats by
fingerprint, status and starts_at). Whoever writes the outbox (the alerter's
transitions, an alert raised through the API) pokes the relay; it also
passes every `interval_s` on its own, so a poke lost in a crash costs at most
that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import asyncpg
import orjson

from shared.background import cancel_and_wait, spawn
from shared.backoff import Backoff
from shared.kafka.producer import EventProducer, OutgoingRecord, ProduceError
from shared.kafka.topics import Topic, topic_name
from shared.settings import ServiceSettings

__all__ = ["AlertRelay"]

log = logging.getLogger(__name__)

_UNPUBLISHED: Final = """
SELECT id, fingerprint, payload FROM alert_events WHERE published_at IS NULL ORDER BY id LIMIT $1
FOR UPDATE SKIP LOCKED
"""
_MARK: Final = "UPDATE alert_events SET published_at = now() WHERE id = ANY($1::bigint[])"


class AlertRelay:
    def __init__(self, settings: ServiceSettings, pool: asyncpg.Pool, producer: EventProducer, *,
                 interval_s: float = 1.0, batch: int = 1_000) -> None:
        self.topic = topic_name(settings, Topic.ALERTS)
        self._pool = pool
        self._producer = producer
        self._interval_s = interval_s
        self._batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.failures = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = spawn(self._loop(), "alerter-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def poke(self) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish what the outbox holds, batch by batch; the records sent."""
        sent = 0
        while True:
            # The rows stay locked until marked: another alerter's relay skips them, so two
            # members never both publish a row (a crash before the mark still re-sends it).
            async with self._pool.acquire(timeout=10) as conn, conn.transaction():
                rows = await conn.fetch(_UNPUBLISHED, self._batch, timeout=10)
                if not rows:
                    return sent
                records = [OutgoingRecord(self.topic, r["fingerprint"].encode(), orjson.dumps(r["payload"]))
                           for r in rows]
                await self._producer.send_batch(records)
                await conn.execute(_MARK, [r["id"] for r in rows], timeout=10)
            sent += len(rows)
            self.published += len(rows)

    async def _loop(self) -> None:
        backoff = Backoff(0.2, 5.0)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.publish_pending()
                backoff.reset()
            except (ProduceError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                self.failures += 1
                delay = backoff.next()
                log.warning("alerts not published yet (retrying in %.1fs): %r", delay, exc)
                await asyncio.sleep(delay)
