"""Which miners get series on /metrics, pool uptime, and liveness deadlines (pure)."""

from __future__ import annotations

import pytest

from services.aggregator.domain.export_deadlines import DeadlineWatch
from services.aggregator.domain.export_selection import PoolUptime, select_miners

pytestmark = pytest.mark.unit

RANKED = [
    (("main", "a"), 5.0),
    (("main", "b"), 50.0),
    (("main", "c"), 50.0),
    (("eu", "a"), 7.0),
    (("main", "idle"), 0.0),
    (("main", "d"), 1.0),
]


@pytest.mark.parametrize(
    ("top_n", "allow", "expected"),
    [
        (2, (), [("main", "b"), ("main", "c")]),  # ties by (pool, miner)
        (3, (), [("main", "b"), ("main", "c"), ("eu", "a")]),
        (0, (), []),
        (0, ("a",), [("eu", "a"), ("main", "a")]),  # allow-list names a miner in every pool
        (2, ("d", "idle", "nobody"), [("main", "b"), ("main", "c"), ("main", "d"), ("main", "idle")]),
        (1, ("b",), [("main", "b")]),  # already top: not twice
        (100, (), [("main", "b"), ("main", "c"), ("eu", "a"), ("main", "a"), ("main", "d")]),  # never zero
    ],
)
def test_top_n_plus_allow_list(top_n: int, allow: tuple[str, ...], expected: list[tuple[str, str]]) -> None:
    assert select_miners(RANKED, top_n, allow) == expected


def test_uptime_counts_from_the_first_activity_and_restarts_after_a_silence() -> None:
    up = PoolUptime(down_after_ms=300_000)
    assert up.seconds("main", 0) == 0.0
    up.observe("main", True, 1_000)
    up.observe("main", True, 61_000)
    assert up.seconds("main", 61_000) == 60.0
    up.observe("main", False, 200_000)  # a quiet spell shorter than down_after: still up
    up.observe("main", True, 300_000)
    assert up.seconds("main", 300_000) == 299.0
    assert up.seconds("main", 700_000) == 0.0  # silent for longer than down_after
    up.observe("main", False, 700_000)
    up.observe("main", True, 800_000)
    assert up.seconds("main", 810_000) == 10.0
    assert up.pools() == ["main"]


def test_deadline_watch() -> None:
    watch: DeadlineWatch[str] = DeadlineWatch()
    watch.watch("a", 100)
    watch.watch("b", 50)
    watch.watch("a", 200)  # re-watched: the old deadline no longer counts
    assert watch.due(99) == ["b"]
    assert watch.due(150) == []
    watch.watch("c", 120)
    watch.forget("c")
    assert watch.due(1000) == ["a"]
    assert len(watch) == 0 and watch.due(10**9) == []


def test_deadline_watch_stays_small_when_rewatched_often() -> None:
    watch: DeadlineWatch[int] = DeadlineWatch()
    for t in range(10_000):
        watch.watch(t % 10, t)
    assert len(watch) == 10
    assert len(watch._heap) <= 2 * 10 + 64 + 1
    assert sorted(watch.due(10**9)) == list(range(10))
