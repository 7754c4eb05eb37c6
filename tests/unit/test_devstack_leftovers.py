"""Which topics `chimera dev up` deletes when it starts the broker: only the private
prefixes of test and benchmark runs, never the catalogue's or anybody else's."""

from __future__ import annotations

import pytest

from chimera.devstack.prepare import leftover_topics


@pytest.mark.parametrize(("name", "left_over"), [
    ("t0123456789ab.pool.shares", True),          # tests/conftest.py topic_prefix
    ("tfe7c2c6e56ad.chimera.alerter-observations", True),
    ("bench0123abcd.pool.shares", True),          # benchmark runs
    ("bench_0123abcd.chimera.snapshots", True),   # bench/ingest_bench.py (schema name as prefix)
    ("pool.shares", False),
    ("chimera.snapshots", False),
    ("t0123456789ab", False),                     # no prefix separator
    ("t0123456789a.pool.shares", False),          # 11 hex digits
    ("t0123456789AB.pool.shares", False),         # uuid hex is lower case
    ("telemetry.events", False),
    ("benchmark.results", False),
    ("prod.t0123456789ab.pool.shares", False),    # only at the start
    ("bench0123abcd", False),
])
def test_leftover_topics(name: str, left_over: bool) -> None:
    assert leftover_topics([name]) == ([name] if left_over else [])


def test_leftover_topics_sorted() -> None:
    assert leftover_topics(["tb0000000000b.x", "keep", "ta0000000000a.x"]) == ["ta0000000000a.x", "tb0000000000b.x"]
