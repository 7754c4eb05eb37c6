"""The cached /metrics exposition: reuse within the ttl, single flight, failures not kept."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from services.ingest.adapters.exposition import CachedExposition
from tests.waiting import until

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 500.0

    def __call__(self) -> float:
        return self.now_s


class RenderCounter:
    """A collector that counts how often it is collected, and can hold or fail a render."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: threading.Event | None = None  # when set up, collect() waits for it
        self.fail = False

    def collect(self) -> Iterator[Metric]:
        self.calls += 1
        if self.gate is not None and not self.gate.wait(5):
            raise TimeoutError("the test never opened the gate")
        if self.fail:
            raise RuntimeError("collector broke")
        gauge = GaugeMetricFamily("renders", "collect() calls so far")
        gauge.add_metric([], self.calls)
        yield gauge

    def describe(self) -> Iterator[Metric]:
        return iter(())


def cached(ttl_s: float, clock: Callable[[], float] = time.monotonic) -> tuple[CachedExposition, RenderCounter]:
    registry = CollectorRegistry()
    counter = RenderCounter()
    registry.register(counter)
    return CachedExposition(registry, ttl_s=ttl_s, clock=clock), counter


async def test_a_render_is_reused_within_the_ttl() -> None:
    clock = FakeClock()
    exposition, counter = cached(ttl_s=5, clock=clock)
    first = await exposition.render()
    clock.now_s += 4.9
    assert await exposition.render() == first
    assert counter.calls == 1
    assert b"renders 1.0" in first


async def test_it_renders_again_once_the_ttl_has_passed() -> None:
    clock = FakeClock()
    exposition, counter = cached(ttl_s=5, clock=clock)
    await exposition.render()
    clock.now_s += 5
    assert b"renders 2.0" in await exposition.render()
    assert counter.calls == 2


async def test_ttl_zero_renders_for_every_caller() -> None:
    exposition, counter = cached(ttl_s=0, clock=FakeClock())
    await exposition.render()
    assert b"renders 2.0" in await exposition.render()
    assert counter.calls == 2


@pytest.mark.parametrize("ttl_s", [0, 5])
async def test_concurrent_callers_share_one_render(ttl_s: float) -> None:
    exposition, counter = cached(ttl_s=ttl_s, clock=FakeClock())
    counter.gate = threading.Event()
    callers = [asyncio.create_task(exposition.render()) for _ in range(10)]
    await until(lambda: counter.calls == 1, 5.0)
    await asyncio.sleep(0.05)  # every caller has arrived while the render is held
    counter.gate.set()
    bodies = await asyncio.gather(*callers)
    assert counter.calls == 1
    assert all(body == bodies[0] for body in bodies) and b"renders 1.0" in bodies[0]


async def test_a_failed_render_reaches_its_waiters_and_is_not_kept() -> None:
    exposition, counter = cached(ttl_s=60, clock=FakeClock())
    counter.gate, counter.fail = threading.Event(), True
    callers = [asyncio.create_task(exposition.render()) for _ in range(3)]
    await until(lambda: counter.calls == 1, 5.0)
    counter.gate.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert [type(o) for o in outcomes] == [RuntimeError] * 3
    assert counter.calls == 1
    counter.fail = False
    assert b"renders 2.0" in await exposition.render()  # tried again at once, ttl or not
    assert counter.calls == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_render_of_the_others() -> None:
    exposition, counter = cached(ttl_s=60, clock=FakeClock())
    counter.gate = threading.Event()
    leaving, staying = (asyncio.create_task(exposition.render()) for _ in range(2))
    await until(lambda: counter.calls == 1, 5.0)
    leaving.cancel()
    counter.gate.set()
    assert b"renders 1.0" in await staying
    assert leaving.cancelled()
    assert counter.calls == 1


def test_ttl_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        CachedExposition(CollectorRegistry(), ttl_s=-1)
