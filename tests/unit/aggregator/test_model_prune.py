"""The model forgets workers idle for over a day as event time passes, and nothing else."""

from __future__ import annotations

from services.aggregator.domain.model import PRUNE_EVERY_MS, PoolAggregate

from .samples import HOUR, MIN, T0_MS, miner_event, share


def test_a_worker_idle_for_a_day_is_forgotten_once_event_time_moves_on() -> None:
    model = PoolAggregate()
    model.ingest_shares([share(T0_MS, worker="idle"), share(T0_MS, worker="busy"),
                         share(T0_MS, miner="m2", worker="alone")])
    model.ingest_miner_events([miner_event(T0_MS, "disconnected", worker="idle", difficulty=8.0)])
    # Shares of the busy worker every hour for 26 hours: the idle ones stop at T0.
    for hour in range(1, 27):
        model.ingest_shares([share(T0_MS + hour * HOUR, worker="busy")])
    assert ("main", "m1", "idle") not in model.workers
    assert ("main", "m1", "idle") not in model.liveness
    assert ("main", "m2", "alone") not in model.workers
    assert ("main", "m2") not in set(model.miners())  # a miner with no worker left goes too
    assert model._miner_workers[("main", "m1")] == ["busy"]
    assert ("main", "m1", "idle") not in model._assigned_difficulty
    assert ("main", "m1", "busy") in model.workers
    assert model.worker_figures(("main", "m1", "busy"), T0_MS + 26 * HOUR)["hashrate"]["24h"] > 0


def test_nothing_younger_than_a_day_goes() -> None:
    model = PoolAggregate()
    model.ingest_shares([share(T0_MS, worker="quiet")])
    for hour in range(1, 24):
        model.ingest_shares([share(T0_MS + hour * HOUR, worker="busy")])
    model.ingest_shares([share(T0_MS + 24 * HOUR - MIN, worker="busy")])
    # The quiet worker's share is inside the 24h window: it counts, and is kept.
    assert ("main", "m1", "quiet") in model.workers
    assert ("main", "m1", "quiet") in model.liveness
    assert model.worker_figures(("main", "m1", "quiet"), T0_MS + 23 * HOUR)["shares"]["24h"] == 1


def test_a_connected_worker_without_shares_keeps_its_difficulty() -> None:
    model = PoolAggregate()
    model.ingest_miner_events([miner_event(T0_MS, "connected", worker="new", difficulty=16.0)])
    model.ingest_shares([share(T0_MS + 2 * PRUNE_EVERY_MS, worker="other")])
    assert model._assigned_difficulty[("main", "m1", "new")] == 16.0


def test_prunes_once_an_hour_of_event_time_counted_from_the_first_share() -> None:
    model = PoolAggregate()
    calls: list[int] = []
    original = model.prune

    def counting(as_of_ms: int) -> None:
        calls.append(as_of_ms)
        original(as_of_ms)

    model.prune = counting  # type: ignore[method-assign]
    for minute in range(0, 3 * 60 + 1, 5):
        model.ingest_shares([share(T0_MS + minute * MIN)])
    # Not at the first batch: every worker it holds has just shared.
    assert calls == [T0_MS + HOUR, T0_MS + 2 * HOUR, T0_MS + 3 * HOUR]
