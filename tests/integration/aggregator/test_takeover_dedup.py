"""A retry that reaches a NEW owner of its partition is still counted once: the dedup
memory crosses the takeover through the journals stored with each batch."""

from __future__ import annotations

import random

import pytest

from services.aggregator.config import AggregatorSettings

from .conftest import assert_figures, produce, running, wait_caught_up
from .streams import MIN, make_stream, recount, ts_ms

pytestmark = pytest.mark.integration


async def test_retries_after_a_takeover_are_counted_once(agg_settings: AggregatorSettings) -> None:
    events, _ = make_stream(seed=47, shares=6_000, hours=2.0, late_fraction=0.0, dup_fraction=0.0,
                            too_late=0, blocks=4)
    half = len(events) // 2
    first, second = events[:half], events[half:]
    newest = max(ts_ms(e) for e in first)
    recent = [e for e in first if e["type"] in ("share", "block") and ts_ms(e) >= newest - 8 * MIN]
    retries = random.Random(47).sample(recent, 150)  # within the 10-minute horizon

    await produce(agg_settings, first)
    async with running(agg_settings):
        await wait_caught_up(agg_settings)
    await produce(agg_settings, [*retries, *second])  # retries first: the horizon has not moved on
    async with running(agg_settings) as successor:  # a new process state: every partition rebuilt
        sent = len(retries) + len(second)
        await wait_caught_up(agg_settings, check=lambda: sum(successor.stats.received.values()) >= sent)
        assert successor.stats.takeovers >= 1 and successor.stats.reuses == 0
        assert successor.stats.replayed >= len(first)  # the journals, not Kafka
        assert sum(successor.stats.duplicates.values()) == len(retries)
    await assert_figures(agg_settings, recount([*first, *retries, *second]))
