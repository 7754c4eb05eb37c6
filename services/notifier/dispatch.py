"""Sending what the delivery log holds: claims, attempts, retries, rate limits, dead letters.

One owned task loops: claim the due notifications (a lease, so another
notifier leaves them alone; oldest first per group), send them (channels
side by side, one channel's in order), log each attempt with its verdict
(`domain.delivery.judge`: sent, retried after a backoff or the
destination's Retry-After, or dead), then publish dead ones to the
dead-letter topic (an outbox: Kafka away delays them, loses none).

A notifier killed after a send and before its log row is written sends that
notification again when the lease runs out: at least once, the narrowest
window HTTP allows (nothing can make a webhook and PostgreSQL commit
together). Killed before the send, it sends after the restart; a logged
delivery is never sent again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from shared.background import cancel_and_wait, spawn
from shared.backoff import Backoff
from shared.clock import now_ms
from shared.kafka.faust_app import TRANSIENT

from .adapters.delivery_log import DueDelivery, Outcome
from .adapters.senders import SendResult
from .directory import Destination
from .domain.delivery import RetryPolicy, TokenBucket, Verdict, judge
from .domain.messages import GroupMessage, message_from_json
from .telemetry import NotifierTelemetry, reason_of

__all__ = ["DeliveryQueue", "Dispatcher", "Sender"]

log = logging.getLogger(__name__)

PublishDead = Callable[[list[tuple[bytes, bytes]]], Awaitable[None]]


class DeliveryQueue(Protocol):
    """What the dispatcher needs of the delivery log (adapters/delivery_log.py)."""

    async def claim_due(self, limit: int, lease_s: float) -> list[DueDelivery]: ...

    async def next_due_s(self) -> float | None: ...

    async def record_attempts(self, outcomes: Sequence[Outcome]) -> None: ...

    async def postpone(self, delivery_id: int, wait_s: float) -> None: ...

    async def undead(self, limit: int) -> list[dict[str, Any]]: ...

    async def mark_dead_lettered(self, ids: Sequence[int]) -> None: ...


class Sender(Protocol):
    async def send(self, channel_type: str, name: str, config: Mapping[str, Any],
                   message: GroupMessage) -> SendResult: ...


class _ChannelGone:
    """The attempt that never happened: the channel was deleted or disabled meanwhile."""

    ok = False
    status_code = None
    error = "channel deleted or disabled"
    retriable = False
    retry_after_s = None
    latency_ms = 0.0
    refused = True


class Dispatcher:
    def __init__(self, log_: DeliveryQueue, channels: Callable[[int], Destination | None], sender: Sender,
                 policy: RetryPolicy, telemetry: NotifierTelemetry, publish_dead: PublishDead, *,
                 default_rate_per_minute: float, concurrency: int, lease_s: float, idle_s: float = 1.0) -> None:
        self._log = log_
        self._channels = channels
        self._sender = sender
        self._policy = policy
        self._telemetry = telemetry
        self._publish_dead = publish_dead
        self._default_rate = default_rate_per_minute
        self._slots = asyncio.Semaphore(concurrency)
        self._batch = concurrency * 4
        self._lease_s = lease_s
        self._idle_s = idle_s
        self._buckets: dict[int, TokenBucket] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._random = random.Random()
        # Dead notifications wait on the topic only after a verdict made them so (or one left by
        # an earlier process): the outbox is read then, not on every idle pass.
        self._dead_waiting = True

    async def start(self) -> None:
        if self._task is None:
            self._task = spawn(self._run(), "notifier-dispatch")

    async def stop(self) -> None:
        """Safe to call twice. A send in flight is abandoned: its lease runs out and it is sent again."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def poke(self) -> None:
        """Something new is due (a flush was stored)."""
        self._wake.set()

    async def _run(self) -> None:
        backoff = Backoff(0.2, 5.0)
        while True:
            # Cleared before the claim, not before the sleep: a flush stored while this claims
            # (or asks when the next one is due) must wake the sleep that follows, not be lost.
            self._wake.clear()
            try:
                sent = await self.run_once()
                backoff.reset()
            except TRANSIENT as exc:
                delay = backoff.next()
                self._telemetry.store_failures.inc()
                log.warning("delivery log unreachable (retrying in %.1fs): %r", delay, exc)
                await asyncio.sleep(delay)
                continue
            if sent:
                continue
            wait_s = await self._log.next_due_s()
            await self._sleep(self._idle_s if wait_s is None else min(wait_s, self._idle_s))

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.01))
        except TimeoutError:
            pass

    async def run_once(self) -> int:
        """Claim and send what is due, log the attempts, then publish the dead; how many were claimed.

        A claim holds at most one notification per group (the oldest open one), so all of it
        goes out side by side without a group's notices overtaking each other."""
        due = await self._log.claim_due(self._batch, self._lease_s)
        outcomes = [o for o in await asyncio.gather(*(self._send(d) for d in due)) if o is not None]
        # A send is not logged if this fails: its lease runs out and it is sent again.
        await self._log.record_attempts(outcomes)
        for outcome in outcomes:
            self._observe(outcome)
        self._dead_waiting = self._dead_waiting or any(o.verdict is Verdict.DEAD for o in outcomes)
        if self._dead_waiting:
            await self._dead_letters()
        return len(due)

    async def _send(self, due: DueDelivery) -> Outcome | None:
        destination = self._channels(due.channel_id)
        if destination is None:
            return Outcome(due, "unknown", _ChannelGone(), Verdict.DEAD, 0.0)
        wait_s = self._bucket(destination).take(now_ms())
        if wait_s > 0:
            self._telemetry.rate_limited.inc()
            await self._log.postpone(due.id, wait_s)
            return None
        async with self._slots:
            result = await self._sender.send(destination.type, destination.name, destination.config,
                                             message_from_json(due.message))
        verdict, retry_in_s = judge(ok=result.ok, retriable=result.retriable, attempt=due.attempts + 1,
                                    retry_after_s=result.retry_after_s, policy=self._policy,
                                    jitter=self._random.random())
        return Outcome(due, destination.type, result, verdict, retry_in_s)

    def _bucket(self, destination: Destination) -> TokenBucket:
        rate = destination.rate_limit_per_minute or self._default_rate
        bucket = self._buckets.get(destination.id)
        if bucket is None or bucket.per_minute != rate:
            bucket = self._buckets[destination.id] = TokenBucket.full(rate, now_ms())
        return bucket

    def _observe(self, outcome: Outcome) -> None:
        result, channel_type = outcome.attempt, outcome.channel_type
        reason = reason_of(ok=result.ok, status_code=result.status_code, refused=result.refused,
                           retriable=result.retriable)
        t = self._telemetry
        t.attempts.labels(channel_type, reason).inc()
        t.send_s.labels(channel_type).observe(result.latency_ms / 1000)
        if outcome.verdict is Verdict.SENT:
            t.notifications.labels(channel_type, "sent", reason).inc()
            t.latency_s.labels(channel_type).observe(
                max(0.0, (datetime.now(UTC) - outcome.due.received_at).total_seconds()))
        elif outcome.verdict is Verdict.DEAD:
            t.notifications.labels(channel_type, "failed", reason).inc()

    async def _dead_letters(self) -> None:
        dead = await self._log.undead(100)
        if dead:
            records = [(str(d["idempotency_key"]).encode(), orjson.dumps(d)) for d in dead]
            await self._publish_dead(records)  # Kafka away: raised, the flag stays, tried again next pass
            await self._log.mark_dead_lettered([int(d["id"]) for d in dead])
            self._telemetry.dead_letters.inc(len(dead))
        if len(dead) < 100:
            self._dead_waiting = False  # none left: read again after the next death
