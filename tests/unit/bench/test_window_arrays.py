"""The array-backed window accumulator (services/aggregator/domain/window_rows.py) reads
the same window totals as the service's WindowAccumulator and its recomputation, over
random streams with late, repeated and out-of-order groups and day-long gaps."""

from __future__ import annotations

import pytest

from bench.window_arrays_bench import verify

pytestmark = pytest.mark.unit


def test_batched_adds_read_as_the_per_group_accumulator() -> None:
    report = verify(seeds=2, batches=80)
    assert report["keys_compared"] > 1_000
