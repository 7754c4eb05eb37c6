"""Where a running simulation sends what it makes: the sink protocols and their shared parts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from chimera.simulate.records import JsonEvent, MetricSample, PerformanceSample

__all__ = ["DeliveryError", "EventSink", "MetricSink", "SinkStats", "Sleep"]

Sleep = Callable[[float], Awaitable[None]]


class DeliveryError(Exception):
    """A sink gave up: the receiver refused (a 4xx other than 429), or kept failing past the retries."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class SinkStats:
    requests: int = 0  # HTTP requests or Kafka batches tried
    retries: int = 0
    events: int = 0  # acknowledged
    metrics: int = 0
    performance: int = 0
    statuses: Counter[int] = field(default_factory=Counter)  # HTTP answers by status


class EventSink(Protocol):
    """Takes contract events; returns once they are stored (acknowledged), raises DeliveryError if never."""

    stats: SinkStats

    async def send_events(self, events: Sequence[JsonEvent]) -> None: ...


@runtime_checkable
class MetricSink(Protocol):
    """Takes custom metric and host usage samples (the metrics API)."""

    async def send_metrics(self, samples: Sequence[MetricSample]) -> None: ...

    async def send_performance(self, samples: Sequence[PerformanceSample]) -> None: ...
