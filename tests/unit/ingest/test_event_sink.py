"""EventSink's connection handling, with hand-written fake producers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.ingest.adapters.event_sink import DeliveryFailed, EventSink, KafkaUnavailable
from services.ingest.config import IngestSettings
from services.ingest.telemetry import IngestTelemetry
from shared.kafka.producer import ProduceError
from tests.waiting import until

pytestmark = pytest.mark.unit


class FakeProducer:
    def __init__(self, world: World) -> None:
        self.world = world
        self.closed_with: float | None = None
        self.sent: list[Any] = []

    async def start(self) -> None:
        if self.world.broker_down:
            raise ProduceError("no broker", retriable=True)

    async def send_events(self, events: Sequence[Any], *, timeout_s: float | None = None) -> None:
        if self.world.send_error is not None:
            raise self.world.send_error
        self.sent.extend(events)

    async def close(self, flush_timeout_s: float) -> None:
        self.closed_with = flush_timeout_s

    async def probe(self, timeout_s: float) -> bool:
        return not self.world.broker_down


class World:
    def __init__(self) -> None:
        self.broker_down = False
        self.send_error: Exception | None = None
        self.producers: list[FakeProducer] = []

    def factory(self) -> FakeProducer:
        producer = FakeProducer(self)
        self.producers.append(producer)
        return producer


def make_sink(world: World) -> tuple[EventSink, IngestTelemetry]:
    settings = IngestSettings(kafka_retry_after_s=3, kafka_reconnect_max_backoff_s=0.5,
                              shutdown_grace_s=4)
    telemetry = IngestTelemetry(CollectorRegistry())
    return EventSink(settings, telemetry, producer_factory=world.factory), telemetry


async def test_start_without_broker_does_not_fail_and_send_refuses_at_once() -> None:
    world = World()
    world.broker_down = True
    sink, telemetry = make_sink(world)
    await sink.start()
    assert not sink.connected and not await sink.ready()
    with pytest.raises(KafkaUnavailable) as info:
        await sink.send(["e"])  # type: ignore[list-item]
    assert info.value.retriable and info.value.retry_after_s == 3
    assert "no broker" in info.value.reason

    world.broker_down = False
    await until(lambda: sink.connected, 3.0)
    assert await sink.ready()
    await sink.send(["e1", "e2"])  # type: ignore[list-item]
    assert world.producers[-1].sent == ["e1", "e2"]
    assert telemetry.kafka_connected._value.get() == 1
    await sink.stop()


async def test_retriable_failure_drops_the_producer_and_reconnects() -> None:
    world = World()
    sink, _ = make_sink(world)
    await sink.start()
    first = world.producers[0]
    world.send_error = ProduceError("not acknowledged in time", retriable=True)
    with pytest.raises(KafkaUnavailable):
        await sink.send(["e"])  # type: ignore[list-item]
    await until(lambda: first.closed_with == 0, 3.0)  # undelivered records dropped
    world.send_error = None
    await until(lambda: sink.connected, 3.0)
    assert len(world.producers) == 2
    await sink.send(["again"])  # type: ignore[list-item]
    assert world.producers[1].sent == ["again"] and first.sent == []
    await sink.stop()


async def test_non_retriable_failure_keeps_the_producer() -> None:
    world = World()
    sink, _ = make_sink(world)
    await sink.start()
    world.send_error = ProduceError("record too large", retriable=False)
    with pytest.raises(DeliveryFailed) as info:
        await sink.send(["e"])  # type: ignore[list-item]
    assert not info.value.retriable
    assert sink.connected and len(world.producers) == 1
    await sink.stop()


async def test_ready_follows_the_probe() -> None:
    world = World()
    sink, _ = make_sink(world)
    await sink.start()
    assert await sink.ready()
    world.broker_down = True
    assert not await sink.ready()
    await sink.stop()


async def test_stop_flushes_with_the_grace_and_is_idempotent() -> None:
    world = World()
    sink, telemetry = make_sink(world)
    await sink.stop()  # before start: harmless
    await sink.start()
    await sink.stop()
    await sink.stop()
    assert world.producers[0].closed_with == 4
    assert not sink.connected
    assert telemetry.kafka_connected._value.get() == 0


async def test_stop_while_reconnecting_ends_the_background_task() -> None:
    world = World()
    world.broker_down = True
    sink, _ = make_sink(world)
    await sink.start()
    await asyncio.sleep(0.3)
    await sink.stop()
    attempts = len(world.producers)
    await asyncio.sleep(0.6)
    assert len(world.producers) == attempts
