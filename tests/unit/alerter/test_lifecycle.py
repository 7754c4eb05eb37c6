"""The alert life cycle with a fake clock: durations, flapping, stale data, groups, edits."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from services.alerter.domain.catalogue import AGGREGATOR_METRICS
from services.alerter.domain.evaluate import Observation, evaluate, evaluate_rule
from services.alerter.domain.index import RuleIndex
from services.alerter.domain.lifecycle import GroupState, Transition, observe, reassess, step
from services.alerter.domain.records import Record
from services.alerter.domain.rules import Rule

from .samples import MIN, T0_MS, pool, rule, worker

pytestmark = pytest.mark.unit

OFFLINE = rule(duration_ms=5 * MIN)
STALE_MS = 15 * MIN


class Groups:
    """The owner of every group, as one alerter process would be."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = {r.id: r for r in rules}
        self.index = RuleIndex.of((r, AGGREGATOR_METRICS[r.metric]) for r in rules)
        self.states: dict[str, GroupState] = {}
        self.transitions: list[Transition] = []

    def feed(self, *records: Record) -> list[Transition]:
        made: list[Transition] = []
        for record in records:
            for obs in evaluate(self.index, record):
                made += self._apply(obs, record.at_ms)
        self.transitions += made
        return made

    def _apply(self, obs: Observation, now_ms: int) -> list[Transition]:
        state = self.states.setdefault(obs.fingerprint, GroupState(obs.fingerprint, obs.rule_id, dict(obs.labels)))
        if not observe(state, obs.reading, obs.holds, obs.limit):
            return []
        return step(state, self.rules[obs.rule_id], now_ms, STALE_MS)

    def tick(self, now_ms: int) -> list[Transition]:
        made = [t for state in self.states.values() for t in step(state, self.rules[state.rule_id], now_ms, STALE_MS)]
        self.transitions += made
        return made


def kinds(transitions: Iterable[Transition]) -> list[tuple[str, int]]:
    return [(t.status, t.at_ms) for t in transitions]


def test_firing_comes_exactly_when_the_condition_held_for_the_duration() -> None:
    groups = Groups(OFFLINE)
    assert kinds(groups.feed(worker(T0_MS, online=False))) == [("pending", T0_MS)]
    assert groups.tick(T0_MS + 5 * MIN - 1) == []
    fired = groups.tick(T0_MS + 5 * MIN)
    assert kinds(fired) == [("firing", T0_MS + 5 * MIN)]
    assert fired[0].starts_at_ms == T0_MS and fired[0].value == 0.0 and fired[0].limit == 0.0
    assert groups.tick(T0_MS + 6 * MIN) == []  # no second firing
    resolved = groups.feed(worker(T0_MS + 7 * MIN, online=True))
    assert kinds(resolved) == [("resolved", T0_MS + 7 * MIN)]
    assert resolved[0].was_firing and resolved[0].reason == "condition cleared"


def test_a_condition_that_clears_before_the_duration_never_fires() -> None:
    groups = Groups(OFFLINE)
    groups.feed(worker(T0_MS, online=False))
    (cleared,) = groups.feed(worker(T0_MS + 4 * MIN, online=True))
    assert (cleared.status, cleared.was_firing) == ("resolved", False)
    assert groups.tick(T0_MS + 10 * MIN) == []


def test_a_zero_duration_fires_at_once() -> None:
    groups = Groups(rule())
    assert kinds(groups.feed(worker(T0_MS, online=False))) == [("pending", T0_MS), ("firing", T0_MS)]


def test_keep_firing_for_rides_out_flapping() -> None:
    groups = Groups(rule(keep_firing_for_ms=10 * MIN))
    groups.feed(worker(T0_MS, online=False))
    assert groups.feed(worker(T0_MS + MIN, online=True)) == []  # back for a minute: still firing
    assert groups.feed(worker(T0_MS + 2 * MIN, online=False)) == []
    assert groups.feed(worker(T0_MS + 3 * MIN, online=True)) == []
    assert groups.tick(T0_MS + 12 * MIN - 1) == []
    assert kinds(groups.tick(T0_MS + 12 * MIN + 30_000)) == [("resolved", T0_MS + 12 * MIN)]


def test_a_series_that_stops_reporting_resolves_as_data_stopped_after_the_stale_bound() -> None:
    groups = Groups(rule())
    groups.feed(worker(T0_MS, online=False))
    assert groups.tick(T0_MS + STALE_MS) == []
    (stopped,) = groups.tick(T0_MS + STALE_MS + 1)
    assert (stopped.status, stopped.at_ms, stopped.reason) == ("resolved", T0_MS + STALE_MS, "data stopped")


def test_group_by_gives_one_alert_per_group_and_none_gives_one_for_the_rule() -> None:
    per_miner = Groups(rule(id=1, group_by=("miner",)))
    whole = Groups(rule(id=2))
    records = [worker(T0_MS, miner=m, name=w, online=False) for m in ("m1", "m2") for w in ("a", "b")]
    per_miner.feed(*records)
    whole.feed(*records)
    firing = [t for t in per_miner.transitions if t.status == "firing"]
    assert sorted(t.labels["miner"] for t in firing) == ["m1", "m2"]
    assert len({t.fingerprint for t in firing}) == 2
    assert [t.status for t in whole.transitions] == ["pending", "firing"]
    # The rule's group stays firing while any of its series holds.
    assert whole.feed(*(worker(T0_MS + MIN, miner=m, name=w) for m, w in (("m1", "a"), ("m1", "b"), ("m2", "a")))) == []
    assert kinds(whole.feed(worker(T0_MS + MIN, miner="m2", name="b"))) == [("resolved", T0_MS + MIN)]


def test_an_older_reading_never_overrides_a_newer_one() -> None:
    groups = Groups(rule())
    groups.feed(worker(T0_MS + MIN, online=False))
    assert groups.feed(worker(T0_MS, online=True)) == []  # arrived late: ignored, still firing
    assert [t.status for t in groups.transitions] == ["pending", "firing"]


def test_a_group_keeps_only_the_series_that_hold() -> None:
    groups = Groups(rule(id=2))
    groups.feed(*(worker(T0_MS, miner="m", name=f"w{i}", online=i < 3) for i in range(10)))
    (state,) = groups.states.values()
    assert sorted(state.series) == [f"worker:main/m/w{i}" for i in range(3, 10)]
    assert state.last is not None and state.last.series == "worker:main/m/w9"


def test_a_replay_makes_identical_transitions() -> None:
    records = [worker(T0_MS + i * MIN, online=i % 7 < 4) for i in range(30)]
    first, second = Groups(OFFLINE), Groups(OFFLINE)
    for r in records:
        first.feed(r)
        first.tick(r.at_ms + 30_000)
    for r in records:
        second.feed(r)
        second.feed(r)  # every record twice, as after a crash before a commit
        second.tick(r.at_ms + 30_000)
    assert first.transitions == second.transitions != []


def test_an_edited_threshold_judges_the_kept_readings_at_once() -> None:
    slow = rule(metric="worker_hashrate", window="1h", operator="<", threshold=150.0)
    groups = Groups(slow)
    groups.feed(worker(T0_MS, hashrate=100.0))
    assert [t.status for t in groups.transitions] == ["pending", "firing"]
    edited = slow.with_changes(threshold=50.0, version=1)
    groups.rules[slow.id] = edited
    for state in groups.states.values():
        reassess(state, edited)
    assert kinds(groups.tick(T0_MS + 10_000)) == [("resolved", T0_MS + 10_000)]


def test_a_pool_relative_drop_fires_and_clears() -> None:
    drop = rule(metric="pool_total_hashrate", window="1h", relative_to="24h", operator="<", threshold=0.7)
    groups = Groups(drop)
    assert groups.feed(pool(T0_MS, hashrate={"1h": 90.0, "24h": 100.0})) == []
    assert [t.status for t in groups.feed(pool(T0_MS + MIN, hashrate={"1h": 50.0, "24h": 100.0}))] == [
        "pending", "firing"]
    assert groups.transitions[-1].limit == pytest.approx(70.0)


def test_no_data_neither_starts_nor_ends_an_alert_and_a_long_silence_goes_stale() -> None:
    """Readings without a value (here: the aggregator catching up on a backlog) leave the
    group as it was; only the stale bound ends a firing alert that hears nothing else."""
    drop = rule(metric="pool_total_hashrate", window="1h", relative_to="24h", operator="<", threshold=0.7)
    groups = Groups(drop)
    dropped = {"hashrate": {"1h": 10.0, "24h": 100.0}}
    assert groups.feed(pool(T0_MS, catching_up=True, **dropped)) == []  # does not start one
    assert [t.status for t in groups.feed(pool(T0_MS + MIN, **dropped))] == ["pending", "firing"]
    recovered = {"hashrate": {"1h": 100.0, "24h": 100.0}}
    assert groups.feed(pool(T0_MS + 2 * MIN, catching_up=True, **recovered)) == []  # nor ends it
    assert groups.tick(T0_MS + MIN + STALE_MS) == []
    (stopped,) = groups.tick(T0_MS + MIN + STALE_MS + 1)
    assert (stopped.status, stopped.reason) == ("resolved", "data stopped")


def test_observations_of_one_record_cover_only_the_rules_that_select_it() -> None:
    rules = [rule(id=i, labels={"miner": f"m{i}"}) for i in range(100)]
    index = RuleIndex.of((r, AGGREGATOR_METRICS[r.metric]) for r in rules)
    record = worker(T0_MS, miner="m42", online=False)
    assert len(index.candidates(record)) == 1
    assert [o.rule_id for o in evaluate(index, record)] == [42]
    assert evaluate_rule(rules[3], AGGREGATOR_METRICS["worker_online"], [record]) == []
