"""Scenarios: the file format, and the pool doing what the schedule says, when it says it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from chimera.simulate import (
    HASHES_PER_DIFFICULTY,
    PoolConfig,
    Scenario,
    ScenarioError,
    ScheduledAction,
    SimulatedPool,
)
from shared.hashrate import hashrate_hs
from tests.unit.simulate.helpers import (
    HOUR_MS,
    MINUTE_MS,
    START_MS,
    accepted_difficulties,
    simulate,
    true_mean_hashrate,
    ts_ms,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("text", "expected"), [
    ("schedule:\n  - {at: 2m, miner: m3, worker: w1, action: offline}",
     [ScheduledAction(120_000, "m3", "w1", "offline")]),
    ("- {at: 90, miner: m1, action: degrade, factor: 0.5}",  # a bare list; numbers are seconds
     [ScheduledAction(90_000, "m1", None, "degrade", 0.5)]),
    ("schedule:\n  - {at: 1m, miner: m1, worker: w2, action: offline, for: 30s}",
     [ScheduledAction(60_000, "m1", "w2", "offline"), ScheduledAction(90_000, "m1", "w2", "online")]),
    ("schedule:\n  - {at: 5m, miner: m2, action: degrade, factor: 0.25, for: 1h}",
     [ScheduledAction(300_000, "m2", None, "degrade", 0.25), ScheduledAction(3_900_000, "m2", None, "degrade", 1.0)]),
    ("schedule:\n  - {at: 5m, miner: m1, action: online}\n  - {at: 1m, miner: m1, action: offline}",
     [ScheduledAction(60_000, "m1", None, "offline"), ScheduledAction(300_000, "m1", None, "online")]),
    ("", []),
    ("description: nothing happens\nschedule: []", []),
])
def test_scenario_files_parse(text: str, expected: list[ScheduledAction]) -> None:
    assert list(Scenario.parse(text).actions) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("schedule:\n  - {at: 2m, miner: m1, action: explode}", r"schedule\[0\]: action must be one of"),
    ("schedule:\n  - {at: 2m, miner: m1, action: degrade}", "degrade needs `factor`"),
    ("schedule:\n  - {at: 2m, miner: m1, action: degrade, factor: -1}", "degrade needs `factor`"),
    ("schedule:\n  - {at: 2m, miner: m1, action: offline, factor: 0.5}", "`factor` belongs to degrade"),
    ("schedule:\n  - {miner: m1, action: offline}", "`at` is required"),
    ("schedule:\n  - {at: soon, miner: m1, action: offline}", "`at`: 'soon' is not a duration"),
    ("schedule:\n  - {at: 1m, action: offline}", "`miner` must be a non-empty string"),
    ("schedule:\n  - {at: 1m, miner: m1, worker: 1, action: offline}", "quote numbers"),
    ("schedule:\n  - {at: 1m, miner: m1, action: online, for: 1m}", "online has nothing to undo"),
    ("schedule:\n  - {at: 1m, miner: m1, action: offline, when: now}", r"unknown field\(s\) when"),
    ("schedule: {at: 1m}", "`schedule` must be a list"),
    ("actions: []", "expected a mapping with `schedule`"),
    ("schedule: [", "not valid YAML"),
])
def test_bad_scenarios_are_refused_with_the_place_named(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.parse(text, source="s.yaml")


def test_a_scenario_naming_a_missing_miner_or_worker_is_refused_by_the_pool() -> None:
    scenario = Scenario.parse("- {at: 1m, miner: m99, action: offline}\n"
                              "- {at: 1m, miner: m1, worker: w42, action: offline}")
    with pytest.raises(ScenarioError, match=r"miner m99, worker m1/w42 .*m1\.\.m3"):
        SimulatedPool(PoolConfig(miners=3, scenario=scenario))


def test_the_shipped_scenarios_fit_the_default_pool() -> None:
    for path in sorted((ROOT / "deploy" / "scenarios").glob("*.yaml")):
        scenario = Scenario.load(path)
        assert scenario.actions and scenario.description, path
        for seed in range(1, 6):
            SimulatedPool(PoolConfig(scenario=scenario), seed=seed)  # raises if it names a stranger


def test_the_demo_scenario_drops_a_worker_and_halves_a_miner_within_minutes() -> None:
    actions = Scenario.load(ROOT / "deploy" / "scenarios" / "demo.yaml").actions
    offline = [a for a in actions if a.action == "offline" and a.worker is not None]
    halved = [a for a in actions if a.action == "degrade" and a.worker is None and a.factor == 0.5]
    assert offline and offline[0].at_ms <= 5 * MINUTE_MS
    assert halved and halved[0].at_ms <= 5 * MINUTE_MS


def _miner_events(run_events: list[dict[str, object]], miner: str, worker: str) -> list[tuple[int, object]]:
    return [(ts_ms(e), e["state"]) for e in run_events
            if e["type"] == "miner" and e["miner"] == miner and e["worker"] == worker]


@pytest.mark.parametrize(("schedule", "whole_miner"), [
    ("- {at: 2m, miner: m1, worker: w1, action: offline}\n- {at: 12m, miner: m1, worker: w1, action: online}", False),
    ("- {at: 2m, miner: m1, action: offline, for: 10m}", True),
], ids=["one worker", "a whole miner"])
def test_an_offline_worker_sends_nothing_until_it_is_back(schedule: str, whole_miner: bool) -> None:
    run = simulate(PoolConfig(miners=4, scenario=Scenario.parse(schedule)), seed=2, span_ms=20 * MINUTE_MS)
    targets = {(w.miner, w.worker) for w in run.pool.workers if w.miner == "m1" and (whole_miner or w.worker == "w1")}
    assert len(targets) > 1 if whole_miner else targets == {("m1", "w1")}
    off, back = START_MS + 2 * MINUTE_MS, START_MS + 12 * MINUTE_MS
    for spec in run.pool.workers:
        shares = [ts_ms(e) for e in run.shares(spec.miner, spec.worker)]
        if (spec.miner, spec.worker) in targets:
            assert not [t for t in shares if off <= t < back]
            assert [t for t in shares if t < off] and [t for t in shares if t >= back]
            assert _miner_events(run.events, spec.miner, spec.worker) == [
                (START_MS, "connected"), (off, "disconnected"), (back, "connected")]
            truth = [(c.t_ms, c.online, c.hashrate_hs) for c in run.changes
                     if (c.miner, c.worker) == (spec.miner, spec.worker) and c.reason in ("offline", "online")]
            assert truth == [(off, False, 0.0), (back, True, spec.hashrate_hs)]
        else:
            assert [t for t in shares if off <= t < back]
            assert _miner_events(run.events, spec.miner, spec.worker) == [(START_MS, "connected")]


@pytest.mark.parametrize("seed", [41, 42, 43])
def test_a_degraded_miner_sends_about_half_after_the_degrade(seed: int) -> None:
    scenario = Scenario.parse("- {at: 1h, miner: m1, action: degrade, factor: 0.5}")
    run = simulate(PoolConfig(miners=3, scenario=scenario), seed=seed, span_ms=2 * HOUR_MS)
    workers = [w for w in run.pool.workers if w.miner == "m1"]
    before, at, after = START_MS, START_MS + HOUR_MS, START_MS + 2 * HOUR_MS
    healthy = sum(w.hashrate_hs for w in workers) * run.pool.config.accepted_fraction
    for lo, hi, share in ((before, at, 1.0), (at, after, 0.5)):
        difficulties = [d for w in workers for d in accepted_difficulties(run, w.miner, w.worker, lo, hi)]
        truth = sum(true_mean_hashrate(run.changes, w.miner, w.worker, lo, hi) for w in workers)
        assert truth * run.pool.config.accepted_fraction == pytest.approx(healthy * share)
        estimate = hashrate_hs(sum(difficulties), hi - lo)
        # Compound Poisson, 5 sd (a false failure once in ~1.7 million seeds): ~20% at ~720 shares.
        sigma = math.sqrt(sum(d * d for d in difficulties)) * HASHES_PER_DIFFICULTY / ((hi - lo) / 1000)
        assert abs(estimate - healthy * share) < 5 * sigma
        assert 5 * sigma < 0.25 * healthy * share  # tight enough to tell half from whole
