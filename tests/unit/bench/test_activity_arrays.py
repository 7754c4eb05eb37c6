"""The service's array-backed ActivityLedger returns the same newly active miners and
workers per pool-minute, keeps the same masks and forgets the same workers as the per-key
reference it replaced (tests/unit/aggregator/activity_reference.py), over random streams
(bench/activity_arrays_bench.py verify) with late, repeated, out-of-order and
beyond-horizon groups, idle gaps, watermark jumps, prunes with workers seen again, and
restores from stored rows; and the check does catch a ledger that loses a group, forgets
nothing, or restores a mask short."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from bench.activity_arrays_bench import Mismatch, verify
from services.aggregator.domain.activity import ActivityLedger, MinuteMask
from services.aggregator.domain.minutes import WorkerKey

pytestmark = pytest.mark.unit


class _DropsOneGroup(ActivityLedger):
    """Loses the last group of every batch of more than one group."""

    def observe(self, share_minutes: Iterable[tuple[str, str, str, int]]) -> dict[tuple[str, int], list[int]]:
        groups = list(share_minutes)
        return super().observe(groups[:-1] if len(groups) > 1 else groups)


class _PrunesNothing(ActivityLedger):
    def prune(self, watermark_ms: int) -> int:
        return 0


class _RestoresOneShort(ActivityLedger):
    """Loses the first restored worker's oldest share-minute."""

    def restore(self, masks: Mapping[WorkerKey, MinuteMask]) -> None:
        masks = dict(masks)
        for key, mask in list(masks.items())[:1]:
            masks[key] = MinuteMask(mask.base, mask.bits & (mask.bits - 1))
        super().restore(masks)


def test_the_service_ledger_reads_as_the_per_key_reference() -> None:
    report = verify(seeds=3, batches=210)
    assert report["batches"] == 630 and report["pool_minutes"] > 30_000 and report["masks"] > 30_000
    assert report["pruned"] > 1_000 and report["restores"] == 9 and report["dropped_stale"] > 100


@pytest.mark.parametrize("ledger_cls", [_DropsOneGroup, _PrunesNothing, _RestoresOneShort])
def test_a_wrong_ledger_is_caught(ledger_cls: type[ActivityLedger]) -> None:
    with pytest.raises(Mismatch):
        verify(seeds=2, batches=140, ledger_cls=ledger_cls)
