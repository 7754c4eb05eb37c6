"""The array-backed activity ledger prototype (bench/columnar/activity_arrays.py) returns
the same newly active miners and workers per pool-minute, and keeps the same masks, as
the service's ActivityLedger over random streams with late, repeated, out-of-order and
beyond-horizon groups, idle gaps and watermark jumps; and the check does catch a ledger
that loses a group."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from bench.activity_arrays_bench import Mismatch, verify
from bench.columnar.activity_arrays import ActivityColumns, ArrayActivityLedger
from services.aggregator.domain.minutes import WorkerKey

pytestmark = pytest.mark.unit


class _DropsOneGroup(ArrayActivityLedger):
    """Loses the last group of every batch of more than one group."""

    def observe_groups(self, keys: Sequence[WorkerKey], minute_start_ms: np.ndarray) -> ActivityColumns:  # type: ignore[type-arg]
        if len(keys) > 1:
            keys, minute_start_ms = keys[:-1], minute_start_ms[:-1]
        return super().observe_groups(keys, minute_start_ms)


def test_batched_observe_reads_as_the_per_group_ledger() -> None:
    report = verify(seeds=2, batches=200)
    assert report["batches"] == 400 and report["pool_minutes"] > 20_000 and report["masks"] > 20_000


def test_a_lost_group_is_caught() -> None:
    with pytest.raises(Mismatch):
        verify(seeds=1, batches=100, ledger_cls=_DropsOneGroup)
