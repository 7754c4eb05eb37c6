"""Where the demo's view gets its figures: the pool's snapshot records, the API, consumer lag.

Each follower is a loop the demo owns (it runs them in one TaskGroup and
cancels them on Ctrl-C) that writes into the shared `DemoState`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.kafka.options import client_options
from shared.kafka.topics import Topic, topic_name
from shared.settings import ServiceSettings

from .view import DemoState

__all__ = ["CONSUMER_GROUPS", "follow_alerts", "follow_lag", "follow_pool"]

log = logging.getLogger(__name__)

# service -> its consumer group's base name (prefixed like topics)
CONSUMER_GROUPS: Final = {
    "aggregator": "aggregator",
    "alerter": "alerter",
    "notifier": "notifier",
    "ingest (metrics)": "ingest.metrics-persister",
}
_EVERY_S: Final = 2.0


async def follow_pool(settings: ServiceSettings, state: DemoState, pool: str = "main") -> None:
    """The latest pool record of `chimera.snapshots` (no consumer group: the view reads, commits nothing)."""
    topic = topic_name(settings, Topic.SNAPSHOTS)
    key = f"pool:{pool}".encode()
    # Without a group id aiokafka assigns every partition of the topic to this consumer itself.
    consumer = AIOKafkaConsumer(topic, **client_options(settings), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="latest")
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1_000)
            for records in batches.values():
                for record in records:
                    if record.key == key and record.value is not None:
                        value = orjson.loads(record.value)
                        state.pool = value.get("figures") or {}
                        state.pool_as_of_ms = state.pool.get("as_of_ms") or value.get("as_of_ms")
    finally:
        await consumer.stop()


async def follow_alerts(client: httpx.AsyncClient, state: DemoState) -> None:
    while True:
        try:
            answer = await client.get("/api/alerts", params={"status": "firing"})
            if answer.status_code == 200:
                body = answer.json()
                state.firing = body.get("alerts", []) if isinstance(body, dict) else body
        except httpx.TransportError as exc:
            log.debug("alerts not read: %r", exc)
        await asyncio.sleep(_EVERY_S)


async def follow_lag(settings: ServiceSettings, state: DemoState) -> None:
    """Records each service's consumer group has yet to commit, summed over its partitions."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    ends = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await admin.start()
    await ends.start()
    try:
        while True:
            lags: dict[str, int | None] = {}
            for service, group in CONSUMER_GROUPS.items():
                try:
                    committed = await admin.list_consumer_group_offsets(topic_name(settings, group))
                    positions = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
                    latest = await ends.end_offsets(list(positions)) if positions else {}
                    lags[service] = sum(max(0, latest[tp] - offset) for tp, offset in positions.items())
                except KafkaError as exc:
                    log.debug("lag of %s not read: %r", service, exc)
                    lags[service] = None
            state.lag = lags
            await asyncio.sleep(_EVERY_S)
    finally:
        await ends.stop()
        await admin.close()
