"""Community metrics and host usage: what the metrics API takes, following the simulated miners."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from chimera.simulate import PoolConfig, Scenario
from chimera.simulate.metrics import poisson
from services.ingest.api.metric_bodies import MetricIn, PerformanceIn
from tests.unit.simulate.helpers import MINUTE_MS, START_MS, simulate

pytestmark = pytest.mark.unit

DEFAULT_PACK_METRICS = {"team_activity", "referral_signups"}


def test_samples_come_every_interval_and_the_metrics_api_takes_them() -> None:
    run = simulate(PoolConfig(miners=6, teams=3), seed=4, span_ms=10 * MINUTE_MS + 1)
    marks = sorted({m.ts_ms for m in run.metrics})
    assert marks == [START_MS + k * MINUTE_MS for k in range(1, 11)]
    assert sorted({p.ts_ms for p in run.performance}) == marks
    names = Counter(m.name for m in run.metrics)
    assert names == {"team_activity": 30, "referral_signups": 10, "competition_participants": 10,
                     "social_shares": 30}
    assert DEFAULT_PACK_METRICS <= set(names)
    for sample in run.metrics:
        MetricIn.model_validate(sample.body(), strict=False)  # JSON-ready: as the API would parse it
    assert {p.host for p in run.performance} == set(run.pool.config.nodes)
    for perf in run.performance:
        body = PerformanceIn.model_validate(perf.body(), strict=False)
        assert body.cpu_usage is not None and 0 < body.cpu_usage <= 100
        assert body.memory_usage is not None and 0 < body.memory_usage < 100


def test_team_activity_and_competition_follow_the_miners() -> None:
    # One team, so every miner is in it; all three go dark at 2m for 5m. A sample at a mark
    # tells the state just before it, so the change at 2m shows at 3m, the one at 7m at 8m.
    scenario = Scenario.parse("\n".join(f"- {{at: 2m, miner: m{i}, action: offline, for: 5m}}" for i in (1, 2, 3)))
    run = simulate(PoolConfig(miners=3, teams=1, scenario=scenario), seed=6, span_ms=10 * MINUTE_MS)
    activity = {(m.ts_ms - START_MS) // MINUTE_MS: m.value for m in run.metrics if m.name == "team_activity"}
    assert activity == {1: 3, 2: 3, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0, 8: 3, 9: 3, 10: 3}
    racing = {(m.ts_ms - START_MS) // MINUTE_MS: m.value for m in run.metrics if m.name == "competition_participants"}
    assert racing[3] == 0 and racing[1] == racing[9] == len([w for w in run.pool.workers if w.competing
                                                               and w.worker == "w1"])


def test_a_node_without_shares_is_idle_and_one_with_many_is_busy() -> None:
    run = simulate(PoolConfig(miners=30, nodes=("busy",)), seed=7, span_ms=3 * MINUTE_MS + 1)
    quiet = simulate(PoolConfig(miners=1, nodes=("busy",)), seed=7, span_ms=3 * MINUTE_MS + 1)
    assert min(p.network_in_bytes for p in run.performance) > max(p.network_in_bytes for p in quiet.performance)


@pytest.mark.parametrize("mean", [0.05, 1.0, 7.5, 200.0])
def test_poisson_draws_have_the_asked_mean(mean: float) -> None:
    rng = random.Random(8)
    draws = [poisson(rng, mean) for _ in range(4_000)]
    # The mean of 4,000 draws: sd sqrt(mean / 4000); 5 sd either side.
    assert abs(sum(draws) / len(draws) - mean) < 5 * (mean / 4_000) ** 0.5
    assert min(draws) >= 0
