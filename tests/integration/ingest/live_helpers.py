"""Publishing snapshot and alert records to a test's topics, and reading /live's events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from aiokafka import AIOKafkaProducer

from services.ingest.adapters.keys import ApiKeyStore
from shared.access import miner_scope
from shared.kafka.options import client_options
from shared.kafka.topics import Topic, topic_name
from shared.settings import ServiceSettings
from tests.integration.ingest.conftest import Api


async def publish(settings: ServiceSettings, base_topic: str, *records: bytes) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for n, value in enumerate(records):
            await producer.send_and_wait(topic_name(settings, base_topic), value, key=f"k{n}".encode())
    finally:
        await producer.stop()


async def publish_snapshots(settings: ServiceSettings, *records: bytes) -> None:
    await publish(settings, Topic.SNAPSHOTS, *records)


async def miner_key(api: Api, miner: str) -> dict[str, str]:
    _, plaintext = await ApiKeyStore(api.container.pool).create("phone", [miner_scope(miner)])
    return {"Authorization": f"Bearer {plaintext}"}


@dataclass
class Event:
    """One server-sent event; a comment or a `retry:` line as an event of its own (`kind` names it)."""

    kind: str
    data: str = ""
    id: str | None = None


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The stream's events and comments as they arrive."""
    current: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield Event("comment", line[1:].strip())
        elif line.startswith("retry:"):
            yield Event("retry", line.partition(":")[2].strip())
        elif line == "":
            if current:
                yield Event(current.get("event", "message"), current.get("data", ""), current.get("id"))
                current = {}
        else:
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")


async def next_event(stream: AsyncIterator[Event], timeout_s: float = 15.0) -> Event:
    async with asyncio.timeout(timeout_s):
        return await anext(stream)
