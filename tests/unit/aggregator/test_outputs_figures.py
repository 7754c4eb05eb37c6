"""Figures across partition models (domain/export_figures.py): what the snapshot stream and /metrics publish."""

from __future__ import annotations

import pytest

from services.aggregator.domain.accumulator import WindowAccumulator
from services.aggregator.domain.export_figures import (
    CATCHING_UP_AFTER_MS,
    catching_up,
    common_as_of_ms,
    liveness_time_ms,
    miner_figures,
    pool_activity,
    pool_figures_from_models,
    pools_of,
    sum_totals,
    worker_figures,
)
from services.aggregator.domain.model import PoolAggregate

from .samples import MIN, T0_MS, block, block_hash, share

pytestmark = pytest.mark.unit

T32 = 2.0**32


def model_of(*shares_: object) -> PoolAggregate:
    model = PoolAggregate()
    model.ingest_shares(list(shares_))  # type: ignore[arg-type]
    return model


@pytest.mark.parametrize(
    ("now", "watermark", "behind", "arrival", "expected"),
    [
        (1000, 400, None, None, 400),  # lag not known yet: event time, as if behind
        (1000, 400, None, 900, 400),
        (1000, 400, 25, 990, 400),  # behind: event time, so lag cannot fake outages
        (1000, 1500, 25, 990, 1000),  # events stamped ahead: never later than the wall clock
        (1000, 0, 25, None, 1000),  # no share seen yet
        (1000, 0, 0, 900, 1000),
        (1000, 400, 0, None, 1000),  # caught up, nothing read since start: an idle stream ages out
        (1000, 990, 0, 990, 1000),  # live: the watermark arrived with its record, so wall clock
        (1000, 400, 0, 990, 410),  # backfill just caught up: the data's own time
        (1000, 400, 0, 100, 1000),  # ... and a silence since then counts in full
        (1000, 400, 0, 700, 700),  # 300 ms idle after the backfill: 300 ms past its watermark
        (1000, 400, 0, 5000, 400),  # arrival stamped ahead of the wall clock: counts as now
        (1000, 1500, 0, 1000, 1000),  # events stamped ahead, caught up: the wall clock
    ],
)
def test_liveness_time(now: int, watermark: int, behind: int | None, arrival: int | None, expected: int) -> None:
    assert liveness_time_ms(now, watermark, behind, arrival) == expected
    # Lag measured just now is the wall clock's knowledge: the same answers.
    assert liveness_time_ms(now, watermark, behind, arrival, lag_at_ms=now) == expected


@pytest.mark.parametrize(
    ("now", "watermark", "behind", "arrival", "lag_at", "expected"),
    [
        # Live, then the consumer stalls 60 s (PostgreSQL away): the time stops at the last
        # moment the partition was known caught up, instead of aging every worker 60 s.
        (61_000, 990, 0, 990, 1_000, 1_000),
        (61_000, 990, 0, 990, 1_500, 1_500),  # known caught up 510 ms after the arrival
        (61_000, 400, 0, None, 1_000, 1_000),  # idle partition: when it was last known caught up
        (61_000, 990, 0, 1_200, 1_000, 990),  # folded after the lag was taken: its own time
        (61_000, 400, 25, 990, 1_000, 400),  # behind: event time whatever the lag's age
        (1_000, 990, 0, 990, 5_000, 1_000),  # a lag stamped ahead of now: never past the wall clock
        (61_000, 0, 0, None, 1_000, 61_000),  # no share seen yet
    ],
)
def test_liveness_time_stops_where_the_lag_was_known(now: int, watermark: int, behind: int | None,
                                                     arrival: int | None, lag_at: int, expected: int) -> None:
    assert liveness_time_ms(now, watermark, behind, arrival, lag_at) == expected


NOW = 10 * 3_600_000


@pytest.mark.parametrize(
    ("watermark", "behind", "arrival", "expected"),
    [
        (NOW - 1_000, 0, NOW - 1_000, False),  # live
        (NOW - 1_000, 5_000, NOW, False),  # live under load: a lag, but the data is recent
        (NOW - CATCHING_UP_AFTER_MS, 5_000, NOW, False),  # exactly the allowance behind
        (NOW - CATCHING_UP_AFTER_MS - 1, 5_000, NOW, True),  # a restart's lag on old event time
        (NOW - 3_600_000, None, None, True),  # lag not known yet, the data is an hour old
        (NOW - 3_600_000, 0, None, False),  # caught up, nothing read since start: idle, what there is
        (NOW - 3_600_000, 0, NOW - 2_000, True),  # a backfill arriving now
        (NOW - 3_600_000, 0, NOW - CATCHING_UP_AFTER_MS - 1, False),  # ... that ended a while ago
        (NOW - 3_600_000, 0, NOW - 3_600_000 + 90_000, False),  # an idle pool: data arrived when it happened
        (NOW - 8 * 60_000, 0, NOW - 7 * 60_000, False),  # a node a minute slow that went quiet
        (0, None, None, False),  # no share yet
    ],
)
def test_catching_up(watermark: int, behind: int | None, arrival: int | None, expected: bool) -> None:
    assert catching_up(NOW, watermark, behind, arrival) is expected


def test_common_as_of_never_goes_back() -> None:
    assert common_as_of_ms(1000, [400, 900]) == 1000
    assert common_as_of_ms(1000, [400, 1300]) == 1300
    assert common_as_of_ms(1000, [], floor_ms=2000) == 2000


def test_sum_totals_requeries_when_a_series_is_ahead() -> None:
    acc: WindowAccumulator[str] = WindowAccumulator()
    acc.add("a", T0_MS, 1, 1, 10.0)
    acc.add("b", T0_MS, 1, 1, 5.0)
    acc.totals("a", T0_MS + 3 * MIN)  # someone else advanced "a" to a later minute
    total = sum_totals(lambda t: [acc.totals(k, t) for k in ("a", "b")], T0_MS + MIN)
    assert total.as_of_ms == T0_MS + 3 * MIN
    assert total.difficulty[1] == 15.0  # 5m window as of T0 + 3 min holds T0
    assert total.difficulty[0] == 0.0  # 1m window: T0 + 2 min only
    assert sum_totals(lambda t: [], T0_MS + 30_123).as_of_ms == T0_MS  # nothing: empty at the minute


def test_pool_figures_add_up_across_models() -> None:
    a = model_of(*(share(T0_MS + i * 1000, miner="a", difficulty=1.0) for i in range(60)))
    b = model_of(*(share(T0_MS + i * 500, miner="b", worker="x", difficulty=2.0) for i in range(120)))
    as_of = T0_MS + MIN
    assert pools_of([a, b]) == {"main"}
    activity = pool_activity([(a, as_of), (b, as_of)])
    assert activity == {"main": (2, 2)}
    figures = pool_figures_from_models("main", [a, b], as_of, activity)
    assert figures["hashrate"]["1m"] == (60 * 1.0 + 120 * 2.0) * T32 / 60
    assert figures["shares"]["1m"] == 180
    assert (figures["active_miners"], figures["active_workers"]) == (2, 2)
    assert figures["blocks_found"] == 0
    assert figures["round_effort"] is None and figures["luck"] == {"64": None, "128": None, "256": None}
    assert figures["as_of_ms"] == as_of
    # a pool nobody holds: empty figures, not an error
    empty = pool_figures_from_models("other", [a, b], as_of, activity)
    assert empty["hashrate"]["1m"] == 0.0 and empty["active_workers"] == 0


def test_pool_effort_only_from_a_single_holder() -> None:
    a = model_of(*(share(T0_MS + i * 1000, difficulty=10.0) for i in range(30)))
    a.ingest_blocks([block(T0_MS + 40_000, block_hash(1), network_difficulty=100.0)])
    a.ingest_shares([share(T0_MS + 50_000, difficulty=25.0)])
    figures = pool_figures_from_models("main", [a], T0_MS + MIN, {})
    assert figures["blocks_found"] == 1
    assert figures["round_effort"] == a.ledger.current_effort("main")
    b = model_of(share(T0_MS, miner="zz"))
    both = pool_figures_from_models("main", [a, b], T0_MS + MIN, {})
    assert both["blocks_found"] == 1 and both["round_effort"] is None


def test_worker_and_miner_figures() -> None:
    model = model_of(
        *(share(T0_MS + i * 1000, worker="w1", difficulty=3.0) for i in range(20)),
        *(share(T0_MS + i * 1000, worker="w2", difficulty=1.0, status="rejected") for i in range(5)),
    )
    as_of = T0_MS + MIN
    w1 = worker_figures(model, ("main", "m1", "w1"), as_of, as_of)
    assert not {"pool", "miner", "worker"} & set(w1)  # identity lives beside the figures
    assert w1["online"] is True and w1["hashrate"]["1m"] == 60.0 * T32 / 60
    # judged 31 minutes later (past the 30 min ceiling): offline; windows stay as asked
    late = worker_figures(model, ("main", "m1", "w1"), as_of, as_of + 31 * MIN)
    assert late["online"] is False and late["hashrate"]["1m"] == w1["hashrate"]["1m"]

    miner = miner_figures(model, "main", "m1", ["w1", "w2", "gone"], as_of, as_of)
    assert (miner["workers_total"], miner["workers_online"], miner["online"]) == (2, 2, True)
    assert miner["hashrate"]["1m"] == 60.0 * T32 / 60
    assert miner["submitted"]["1m"] == 25 and miner["efficiency"]["1m"] == 20 / 25
    assert miner["last_share_at_ms"] == T0_MS + 19_000
    nobody = miner_figures(model, "main", "m1", ["gone"], as_of, as_of)
    assert (nobody["workers_total"], nobody["online"]) == (0, False)
