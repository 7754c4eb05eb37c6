"""The live hub: the latest figures the snapshot and alert streams carried, fanned out to pages.

The Kafka side (`services.ingest.adapters.live_feed`) hands every record's bytes
to `LiveHub.accept_snapshot` / `accept_alert`; `/live` streams subscribe, and
`/api/miners` reads the miner summaries. No I/O here.

What is kept, and why it stays small with 100,000 workers: the latest record per
pool (at most `max_pools`), and per miner a `MinerSummary` (packed figures: measured
with tracemalloc, 588 bytes per miner with its name and index entry, so 20,000 miners
take 12 MB; at most `max_miners`). Worker records are never kept: they only pass
through to the subscribers of their miner, so 100,000 workers cost no memory here.

A subscriber's queue holds at most `queue_records` records and coalesces by record
key: a newer record of the same pool, miner, worker or alert replaces the queued
one in place, so a slow browser gets the latest figures rather than a backlog;
past the bound the oldest queued record is dropped. Both are counted.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from services.ingest.domain.live_records import (
    Kind,
    LiveRecord,
    MalformedRecord,
    MinerSummary,
    parse_alert,
    parse_snapshot,
)

__all__ = ["LiveHub", "LiveLimits", "LiveObserver", "RecordSource", "StreamLimit", "Subscription",
           "TooManyStreams"]

_K = TypeVar("_K")


class RecordSource(StrEnum):
    SNAPSHOT = "snapshot"
    ALERT = "alert"


class StreamLimit(StrEnum):
    """Which bound refused a stream."""

    PROCESS = "process"
    CLIENT = "client"


class LiveObserver(Protocol):
    def malformed(self, source: RecordSource) -> None:
        """A record failed its checks and was skipped."""

    def coalesced(self, records: int) -> None:
        """Records a subscriber never got: replaced by a newer one of the same key, or dropped at the bound."""

    def untracked(self) -> None:
        """A pool or miner past the hub's bound: its figures are forwarded but not kept."""


@dataclass(frozen=True)
class LiveLimits:
    max_streams: int = 1_000
    max_streams_per_client: int = 16
    queue_records: int = 256
    max_pools: int = 64
    max_miners: int = 100_000


class TooManyStreams(Exception):
    def __init__(self, limit: StreamLimit, bound: int) -> None:
        super().__init__(f"at most {bound} live streams ({limit})")
        self.limit = limit
        self.bound = bound


class Subscription:
    """One open page: a pool, optionally one miner; `key_miner` when its key is limited to a miner."""

    def __init__(self, *, pool: str, miner: str | None, key_miner: str | None, client: str,
                 queue_records: int, observer: LiveObserver) -> None:
        self.pool = pool
        self.miner = miner
        self.key_miner = key_miner
        self.client = client
        self._bound = queue_records
        self._observer = observer
        self._pending: OrderedDict[str, LiveRecord] = OrderedDict()
        self._wake = asyncio.Event()
        self.closed = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def wants(self, record: LiveRecord) -> bool:
        if record.kind is Kind.ALERT:
            # A miner's key sees its own miner's alerts only: pool-wide ones name no miner.
            return self.key_miner is None or record.miner == self.key_miner
        if record.pool != self.pool:
            return False
        if record.kind is Kind.POOL:
            return self.key_miner is None  # pool figures are for read keys (as /api/pool/stats)
        return self.miner is not None and record.miner == self.miner

    def offer(self, record: LiveRecord) -> None:
        if self.closed:
            return
        if record.key in self._pending:
            self._pending[record.key] = record  # in place: the key keeps its turn
            self._observer.coalesced(1)
        else:
            if len(self._pending) >= self._bound:
                self._pending.popitem(last=False)
                self._observer.coalesced(1)
            self._pending[record.key] = record
        self._wake.set()

    def take(self) -> list[LiveRecord]:
        """Everything queued, oldest first."""
        records = list(self._pending.values())
        self._pending.clear()
        self._wake.clear()
        return records

    async def wait(self, timeout_s: float) -> None:
        """Until a record is queued, the subscription is closed, or `timeout_s` passes."""
        if self._pending or self.closed:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await self._wake.wait()
        except TimeoutError:
            return

    def close(self) -> None:
        self.closed = True
        self._wake.set()


class LiveHub:
    def __init__(self, limits: LiveLimits, observer: LiveObserver) -> None:
        self._limits = limits
        self._observer = observer
        self._pools: dict[str, LiveRecord] = {}
        self._miners: dict[str, dict[str, MinerSummary]] = {}
        self._miner_count = 0
        self._subscriptions: set[Subscription] = set()
        self._by_client: dict[str, int] = {}
        # Who gets what: pool records go to a pool's watchers, miner and worker records to a miner's.
        self._pool_watchers: dict[str, set[Subscription]] = {}
        self._miner_watchers: dict[tuple[str, str], set[Subscription]] = {}
        self._closed = False

    # --- the feed's side ----------------------------------------------------

    def accept_snapshot(self, raw: bytes) -> None:
        try:
            record, summary = parse_snapshot(raw)
        except MalformedRecord:
            self._observer.malformed(RecordSource.SNAPSHOT)
            return
        if record.kind is Kind.POOL:
            assert record.pool is not None  # snapshot records always name their pool
            if record.pool in self._pools or len(self._pools) < self._limits.max_pools:
                self._pools[record.pool] = record
            else:
                self._observer.untracked()
            self._fan_out(record, self._pool_watchers.get(record.pool, ()))
            return
        if summary is not None:
            self._keep(summary)
        assert record.pool is not None and record.miner is not None
        self._fan_out(record, self._miner_watchers.get((record.pool, record.miner), ()))

    def accept_alert(self, raw: bytes) -> None:
        try:
            record = parse_alert(raw)
        except MalformedRecord:
            self._observer.malformed(RecordSource.ALERT)
            return
        self._fan_out(record, self._subscriptions)

    def _keep(self, summary: MinerSummary) -> None:
        pool = self._miners.get(summary.pool)
        if pool is None:
            if len(self._miners) >= self._limits.max_pools:
                self._observer.untracked()
                return
            pool = self._miners[summary.pool] = {}
        if summary.miner not in pool:
            if self._miner_count >= self._limits.max_miners:
                self._observer.untracked()
                return
            self._miner_count += 1
        pool[summary.miner] = summary

    def _fan_out(self, record: LiveRecord, subscriptions: set[Subscription] | tuple[()]) -> None:
        for subscription in subscriptions:
            if subscription.wants(record):
                subscription.offer(record)

    # --- readers ------------------------------------------------------------

    def latest_pool(self, pool: str) -> LiveRecord | None:
        return self._pools.get(pool)

    def miners(self, pool: str, *, fresh_after_ms: int) -> list[MinerSummary]:
        """The pool's miners published after `fresh_after_ms`; older ones (the aggregator stopped
        publishing them: no worker in 24 h) are forgotten here."""
        known = self._miners.get(pool, {})
        stale = [m for m, s in known.items() if s.as_of_ms <= fresh_after_ms]
        for miner in stale:
            del known[miner]
        self._miner_count -= len(stale)
        return list(known.values())

    def miner(self, pool: str, miner: str) -> MinerSummary | None:
        return self._miners.get(pool, {}).get(miner)

    @property
    def miner_count(self) -> int:
        return self._miner_count

    @property
    def open_streams(self) -> int:
        return len(self._subscriptions)

    # --- pages' side --------------------------------------------------------

    def subscribe(self, *, pool: str, miner: str | None, key_miner: str | None, client: str) -> Subscription:
        """A new subscription, already holding the latest figures it may see (pool, then miner);
        TooManyStreams past a bound. Closed hub: the subscription comes back closed."""
        if len(self._subscriptions) >= self._limits.max_streams:
            raise TooManyStreams(StreamLimit.PROCESS, self._limits.max_streams)
        if self._by_client.get(client, 0) >= self._limits.max_streams_per_client:
            raise TooManyStreams(StreamLimit.CLIENT, self._limits.max_streams_per_client)
        subscription = Subscription(pool=pool, miner=miner, key_miner=key_miner, client=client,
                                    queue_records=self._limits.queue_records, observer=self._observer)
        if self._closed:
            subscription.close()
            return subscription
        self._subscriptions.add(subscription)
        self._by_client[client] = self._by_client.get(client, 0) + 1
        self._pool_watchers.setdefault(pool, set()).add(subscription)
        if miner is not None:
            self._miner_watchers.setdefault((pool, miner), set()).add(subscription)
        latest = self._pools.get(pool)
        if latest is not None and subscription.wants(latest):
            subscription.offer(latest)
        summary = self.miner(pool, miner) if miner is not None else None
        if summary is not None:
            subscription.offer(summary.as_record())
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscription; safe twice."""
        subscription.close()
        if subscription not in self._subscriptions:
            return
        self._subscriptions.discard(subscription)
        left = self._by_client[subscription.client] - 1
        if left:
            self._by_client[subscription.client] = left
        else:
            del self._by_client[subscription.client]
        _discard(self._pool_watchers, subscription.pool, subscription)
        if subscription.miner is not None:
            _discard(self._miner_watchers, (subscription.pool, subscription.miner), subscription)

    def close(self) -> None:
        """End every stream (the server is stopping) and open no more; safe twice."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.close()


def _discard(index: dict[_K, set[Subscription]], key: _K, subscription: Subscription) -> None:
    watchers = index.get(key)
    if watchers is None:
        return
    watchers.discard(subscription)
    if not watchers:
        del index[key]
