"""`run`: the pool driven by a clock into sinks, with hand-written fakes of sinks, clock and truth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import pytest

from chimera.simulate import (
    DeliveryError,
    Fast,
    JsonEvent,
    MetricSample,
    PerformanceSample,
    PoolConfig,
    RealTime,
    Scenario,
    SimulatedPool,
    SinkStats,
    run,
)
from tests.unit.simulate.helpers import MINUTE_MS, START_MS

pytestmark = pytest.mark.unit

CONFIG = PoolConfig(miners=4, scenario=Scenario.parse("- {at: 2m, miner: m1, worker: w1, action: offline}"))


class EventsOnly:
    def __init__(self, fail_after: int | None = None) -> None:
        self.batches: list[list[JsonEvent]] = []
        self.stats = SinkStats()
        self._fail_after = fail_after

    async def send_events(self, events: Sequence[JsonEvent]) -> None:
        if self._fail_after is not None and len(self.batches) >= self._fail_after:
            raise DeliveryError("refused", status=422)
        self.batches.append(list(events))


class EventsAndMetrics(EventsOnly):
    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[MetricSample] = []
        self.performance: list[PerformanceSample] = []

    async def send_metrics(self, samples: Sequence[MetricSample]) -> None:
        self.metrics += samples

    async def send_performance(self, samples: Sequence[PerformanceSample]) -> None:
        self.performance += samples


class Truth:
    def __init__(self) -> None:
        self.records: list[Mapping[str, object]] = []
        self.flushes = 0

    def write(self, record: Mapping[str, object]) -> None:
        self.records.append(record)

    def flush(self) -> None:
        self.flushes += 1


class WallClock:
    """A wall clock that moves only when slept on."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.sleeps: list[float] = []

    def now(self) -> int:
        return self.now_ms

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_ms += round(seconds * 1000)


async def test_fast_sends_the_span_that_ends_now_and_writes_the_truth() -> None:
    pool, sink, truth = SimulatedPool(CONFIG, seed=9), EventsAndMetrics(), Truth()
    end = START_MS + 10 * MINUTE_MS
    report = await run(pool, sink, Fast(tick_ms=MINUTE_MS, now=lambda: end), span_ms=10 * MINUTE_MS, truth=truth)
    sent = [e for batch in sink.batches for e in batch]
    # The same stream as the model alone gives for that span.
    assert sent == SimulatedPool(CONFIG, seed=9).events(START_MS, end)
    assert (report.start_ms, report.reached_ms, report.end_ms) == (START_MS, end, end)
    assert report.events == Counter(str(e["type"]) for e in sent)
    per_minute = len({w.team for w in pool.workers}) + 5  # each team with members; referrals, competition, 3 socials
    assert len(sink.metrics) == report.metrics == 10 * per_minute
    assert len(sink.performance) == report.performance == 10 * 2
    kinds = Counter(str(r["kind"]) for r in truth.records)
    assert kinds["run"] == 1 and kinds["worker"] == len(pool.workers) and kinds["scheduled"] == 1
    assert kinds["event"] == len(sent) and kinds["metric"] == 10 * per_minute and kinds["performance"] == 20
    assert kinds["state"] >= len(pool.workers) + 1  # everyone's start, and the outage
    assert truth.records[0]["start_ms"] == START_MS and truth.flushes == 11
    offline = [r for r in truth.records if r["kind"] == "state" and r["reason"] == "offline"]
    assert offline == [{"kind": "state", "ts_ms": START_MS + 2 * MINUTE_MS, "miner": "m1", "worker": "w1",
                        "hashrate_hs": 0.0, "online": False, "factor": 1.0,
                        "difficulty": offline[0]["difficulty"], "reason": "offline"}]


async def test_real_time_waits_for_each_tick_to_pass_before_sending_it() -> None:
    clock = WallClock(START_MS)
    sink = EventsOnly()
    ticks: list[int] = []
    report = await run(SimulatedPool(CONFIG, seed=9), sink, RealTime(tick_ms=1_000, now=clock.now, sleep=clock.sleep),
                       span_ms=5_000, on_span=lambda r: ticks.append(r.reached_ms))
    assert clock.sleeps == [1.0] * 5
    assert ticks == [START_MS + k * 1_000 for k in range(1, 6)]
    # Nothing is sent before it happened: each batch's events are older than the clock then.
    assert report.end_ms == START_MS + 5_000
    assert len(sink.batches) == 6  # the connections at the start, then one batch a tick with shares


async def test_metrics_go_to_the_sink_only_when_it_takes_them_or_a_metrics_sink_is_given() -> None:
    end = START_MS + 3 * MINUTE_MS
    events_only, metrics, pool = EventsOnly(), EventsAndMetrics(), SimulatedPool(CONFIG)
    report = await run(pool, events_only, Fast(now=lambda: end), span_ms=3 * MINUTE_MS, metrics=metrics)
    per_minute = len({w.team for w in pool.workers}) + 5
    assert report.metrics == len(metrics.metrics) == 3 * per_minute and metrics.batches == []
    quiet = EventsAndMetrics()
    report = await run(SimulatedPool(CONFIG), quiet, Fast(now=lambda: end), span_ms=3 * MINUTE_MS,
                       send_metrics=False)
    assert report.metrics == 0 and quiet.metrics == [] and quiet.batches


async def test_a_sink_that_gives_up_stops_the_run_and_the_truth_keeps_only_what_was_taken() -> None:
    truth = Truth()
    end = START_MS + 5 * MINUTE_MS
    with pytest.raises(DeliveryError):
        await run(SimulatedPool(CONFIG), EventsOnly(fail_after=2), Fast(tick_ms=MINUTE_MS, now=lambda: end),
                  span_ms=5 * MINUTE_MS, truth=truth)
    sent = [r for r in truth.records if r["kind"] == "event"]
    expected = SimulatedPool(CONFIG).events(START_MS, START_MS + MINUTE_MS)
    assert [r["event"] for r in sent] == expected


async def test_run_wants_a_fresh_pool_and_fast_wants_a_span() -> None:
    pool = SimulatedPool(CONFIG)
    pool.start(START_MS)
    with pytest.raises(ValueError, match="fresh"):
        await run(pool, EventsOnly(), Fast(now=lambda: START_MS), span_ms=MINUTE_MS)
    with pytest.raises(ValueError, match="needs a span"):
        await run(SimulatedPool(CONFIG), EventsOnly(), Fast(now=lambda: START_MS))
