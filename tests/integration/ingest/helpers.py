"""Events to send and a way to read back everything the ingest API wrote to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.kafka.options import client_options
from shared.kafka.topics import Topic, topic_name
from shared.settings import ServiceSettings

POOL_TOPICS = (Topic.SHARES, Topic.BLOCKS, Topic.MINERS)
HASH = "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054"
_ids = itertools.count()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def share(miner: str = "bc1qminer", **changes: Any) -> dict[str, Any]:
    event = {
        "event_id": f"s-{next(_ids)}-{time.time_ns()}", "type": "share", "ts": now_ms(),
        "pool": "main", "node": "node-1", "miner": miner, "worker": "rig1",
        "difficulty": 65536.0, "status": "accepted",
    }
    return {**event, **changes}


def block(miner: str = "bc1qminer", **changes: Any) -> dict[str, Any]:
    event = {
        "event_id": f"b-{next(_ids)}-{time.time_ns()}", "type": "block", "ts": now_ms(),
        "node": "node-1", "miner": miner, "worker": "rig1", "height": 840_000, "hash": HASH,
        "network_difficulty": 8.6e13, "reward": 3.125, "status": "candidate",
    }
    return {**event, **changes}


def miner_event(miner: str = "bc1qminer", **changes: Any) -> dict[str, Any]:
    event = {
        "event_id": f"m-{next(_ids)}-{time.time_ns()}", "type": "miner", "ts": now_ms(),
        "node": "node-1", "miner": miner, "worker": "rig1", "state": "connected",
        "user_agent": "cgminer/4.12",
    }
    return {**event, **changes}


async def read_topics(
    settings: ServiceSettings, bases: tuple[str, ...] = POOL_TOPICS, *, timeout_s: float = 15.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record in these topics, read by a fresh consumer (no group) from the start to the end."""
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic_name(settings, base), p)
            for base in bases for p in range(settings.kafka_topic_partitions)
        ]
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        pending = {tp for tp, offset in end.items() if offset > 0}
        records: list[ConsumerRecord[bytes, bytes]] = []
        if not pending:
            return records
        await consumer.seek_to_beginning(*pending)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, batch in batches.items():
                records.extend(r for r in batch if r.offset < end[tp])
            pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
        assert not pending, f"could not read to the end of {pending}"
        return records
    finally:
        await consumer.stop()


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    """Bytes as they come until the server closes: a reset after the answer keeps what came before it
    (StreamReader.read() would raise and drop what it had buffered)."""
    received = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            received += chunk
    return received
