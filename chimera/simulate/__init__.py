"""A realistic simulated mining pool: `chimera simulate`, and a library pool nodes and the demo use.

    from chimera.simulate import HttpSink, PoolConfig, RealTime, Scenario, SimulatedPool, run

    pool = SimulatedPool(PoolConfig(miners=20, scenario=Scenario.load("deploy/scenarios/demo.yaml")), seed=1)
    async with HttpSink("http://127.0.0.1:8000", key) as sink:
        await run(pool, sink, RealTime(), span_ms=10 * 60_000)

The model (`SimulatedPool`, `Scenario`, the records) is pure: no I/O, time
passed in as `*_ms`, every draw from seeded `random.Random`s. Sinks and
clocks are the adapters. docs/simulator.md has the whole picture.
"""

from chimera.simulate.config import HASHES_PER_DIFFICULTY, PoolConfig, VardiffConfig
from chimera.simulate.http_sink import HttpSink
from chimera.simulate.kafka_sink import KafkaSink
from chimera.simulate.pool import SimulatedPool, Span
from chimera.simulate.population import WorkerSpec
from chimera.simulate.records import (
    JsonEvent,
    MetricSample,
    PerformanceSample,
    StateChange,
)
from chimera.simulate.retry import RetryPolicy
from chimera.simulate.runner import Clock, Fast, RealTime, RunReport, run
from chimera.simulate.scenario import Scenario, ScenarioError, ScheduledAction
from chimera.simulate.sinks import DeliveryError, EventSink, MetricSink, SinkStats
from chimera.simulate.truth import TruthLog, TruthSink

__all__ = [
    "HASHES_PER_DIFFICULTY",
    "Clock",
    "DeliveryError",
    "EventSink",
    "Fast",
    "HttpSink",
    "JsonEvent",
    "KafkaSink",
    "MetricSample",
    "MetricSink",
    "PerformanceSample",
    "PoolConfig",
    "RealTime",
    "RetryPolicy",
    "RunReport",
    "Scenario",
    "ScenarioError",
    "ScheduledAction",
    "SimulatedPool",
    "SinkStats",
    "Span",
    "StateChange",
    "TruthLog",
    "TruthSink",
    "VardiffConfig",
    "WorkerSpec",
    "run",
]
