"""`run`: drive a SimulatedPool through time and hand what it makes to sinks.

The clock decides the pace. `RealTime` emits each tick's events once the
tick has passed on the wall clock (event time = now); `Fast` simulates the
`span` that ends now, back to back, as fast as the sinks take it (event
times in the past, so the ingest's 5-minute future limit never bites, and
the contract's 24-hour lateness limit means a span longer than a day loses
its oldest shares). Sinks back off on their own; a slow sink makes a
real-time run fall behind, never skip.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from chimera.simulate.pool import SimulatedPool, Span
from chimera.simulate.sinks import EventSink, MetricSink, Sleep
from chimera.simulate.truth import TruthSink
from shared.clock import now_ms

__all__ = ["Clock", "Fast", "RealTime", "RunReport", "run"]


class Clock(Protocol):
    """The pace of a run: how long a tick is, where the run starts and ends, and waiting."""

    @property
    def tick_ms(self) -> int: ...

    def window(self, span_ms: int | None) -> tuple[int, int | None]: ...

    async def wait_until(self, ms: int) -> None: ...


class RealTime:
    def __init__(self, tick_ms: int = 1_000, *, now: Callable[[], int] = now_ms,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.tick_ms = tick_ms
        self._now = now
        self._sleep = sleep

    def window(self, span_ms: int | None) -> tuple[int, int | None]:
        start = self._now()
        return start, None if span_ms is None else start + span_ms

    async def wait_until(self, ms: int) -> None:
        delay_ms = ms - self._now()
        if delay_ms > 0:
            await self._sleep(delay_ms / 1000)


class Fast:
    def __init__(self, tick_ms: int = 60_000, *, now: Callable[[], int] = now_ms) -> None:
        self.tick_ms = tick_ms
        self._now = now

    def window(self, span_ms: int | None) -> tuple[int, int | None]:
        if span_ms is None or span_ms <= 0:
            raise ValueError("a fast run needs a span (the event time it covers, ending now)")
        end = self._now()
        return end - span_ms, end

    async def wait_until(self, ms: int) -> None:
        await asyncio.sleep(0)  # no waiting, but let other tasks (progress, Ctrl-C) run


@dataclass
class RunReport:
    start_ms: int
    reached_ms: int  # event time the run has sent up to
    end_ms: int | None
    events: Counter[str] = field(default_factory=Counter)  # acknowledged, by type
    metrics: int = 0
    performance: int = 0


async def run(pool: SimulatedPool, sink: EventSink, clock: Clock, *, span_ms: int | None = None,
              metrics: MetricSink | None = None, send_metrics: bool = True,
              truth: TruthSink | None = None,
              on_span: Callable[[RunReport], None] | None = None) -> RunReport:
    """Run `pool` (not yet started) for `span_ms` of event time (realtime: forever if None).

    Events go to `sink`; samples go to `metrics`, or to `sink` when it takes them
    (HttpSink does, KafkaSink does not), unless `send_metrics` is False. With
    `truth`, every state change and every acknowledged event and sample is
    written to it. Raises DeliveryError when a sink gives up.
    """
    if pool.started:
        raise ValueError("run() starts the pool; give it a fresh SimulatedPool")
    start, end = clock.window(span_ms)
    samples_to = metrics if metrics is not None else sink if isinstance(sink, MetricSink) else None
    report = RunReport(start, start, end)
    opening = pool.start(start)
    if truth is not None:
        for record in pool.describe():
            truth.write(record)
    await _deliver(opening, sink, samples_to if send_metrics else None, truth, report)
    t = start
    while end is None or t < end:
        upto = t + clock.tick_ms if end is None else min(t + clock.tick_ms, end)
        await clock.wait_until(upto)
        await _deliver(pool.advance(t, upto), sink, samples_to if send_metrics else None, truth, report)
        t = report.reached_ms = upto
        if on_span is not None:
            on_span(report)
    return report


async def _deliver(span: Span, sink: EventSink, metrics: MetricSink | None, truth: TruthSink | None,
                   report: RunReport) -> None:
    if truth is not None:
        for change in span.changes:
            truth.write({"kind": "state", **change.as_json()})
    if span.events:
        await sink.send_events(span.events)
        report.events.update(str(event["type"]) for event in span.events)
        if truth is not None:
            for event in span.events:
                truth.write({"kind": "event", "event": event})
    if metrics is not None and (span.metrics or span.performance):
        await metrics.send_metrics(span.metrics)
        await metrics.send_performance(span.performance)
        report.metrics += len(span.metrics)
        report.performance += len(span.performance)
        if truth is not None:
            for sample in span.metrics:
                truth.write({"kind": "metric", "sample": sample.body()})
            for perf in span.performance:
                truth.write({"kind": "performance", "sample": perf.body()})
    if truth is not None:
        truth.flush()
