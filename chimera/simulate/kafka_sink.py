"""`KafkaSink`: events straight to the `pool.*` topics, as a pool node producing to Kafka does.

Topics and keys are the contract's (section 1; `EventProducer.send_events`
routes by `shared.events`): `pool.shares`, `pool.blocks`, `pool.miners`
(with the settings' topic prefix), key = the miner. Events are validated
first, so a simulator bug fails here rather than in the dead-letter topic.
A retriable produce failure resends the same events (same `event_id`s) after
a doubling back-off. Metrics have no direct topic in the contract: send
them through an HttpSink.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from types import TracebackType
from typing import Self

import orjson

from chimera.simulate.records import JsonEvent
from chimera.simulate.retry import RetryPolicy
from chimera.simulate.sinks import DeliveryError, SinkStats, Sleep
from shared.events import InvalidEvent, decode_batch
from shared.kafka.producer import EventProducer, ProduceError
from shared.settings import ServiceSettings

__all__ = ["KafkaSink"]


class KafkaSink:
    def __init__(self, settings: ServiceSettings, *, max_batch_events: int = 5_000,
                 policy: RetryPolicy | None = None, sleep: Sleep = asyncio.sleep,
                 client_id: str = "chimera-simulate") -> None:
        self._producer = EventProducer(settings, client_id=client_id)
        self._max_events = max_batch_events
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self.stats = SinkStats()

    async def start(self) -> None:
        await self._retrying("connect", self._producer.start)

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def send_events(self, events: Sequence[JsonEvent]) -> None:
        if not events:
            return
        try:
            decoded = decode_batch(orjson.dumps(list(events)), max_events=len(events))
        except InvalidEvent as exc:
            raise DeliveryError(f"the simulator made an invalid event: {exc}") from exc
        for first in range(0, len(decoded), self._max_events):
            chunk = decoded[first:first + self._max_events]
            await self._retrying("produce", partial(self._producer.send_events, chunk))
            self.stats.events += len(chunk)

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[None]]) -> None:
        policy = self._policy
        backoff = policy.backoff()
        for tries in range(1, policy.max_attempts + 1):
            self.stats.requests += 1
            try:
                await attempt()
                return
            except ProduceError as exc:
                if not exc.retriable or tries == policy.max_attempts:
                    raise DeliveryError(f"Kafka {what} failed after {tries} attempt(s): {exc}") from exc
            self.stats.retries += 1
            await self._sleep(backoff.next())
