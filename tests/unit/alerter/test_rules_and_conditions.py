"""Rule checks, every operator, relative and confidence-aware conditions, fingerprints."""

from __future__ import annotations

import pytest

from services.alerter.domain.catalogue import AGGREGATOR_METRICS, custom_spec, spec_of
from services.alerter.domain.conditions import fingerprint, group_labels, holds
from services.alerter.domain.records import Reading, readings
from services.alerter.domain.rules import check_rule, format_duration, parse_duration_ms

from .samples import T0_MS, pool, rule, worker

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "ms"), [("0", 0), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000),
                                          ("2d", 172_800_000), ("250ms", 250)])
def test_durations_parse_and_print_back(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms
    assert parse_duration_ms(format_duration(ms)) == ms


@pytest.mark.parametrize("text", ["", "5", "5 m", "-5m", "1.5h", "5M", "1w", "99999999s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metric": "no_such_metric"}, "metric"),
        ({"operator": "=>"}, "operator"),
        ({"severity": "fatal"}, "severity"),
        ({"threshold": float("nan")}, "threshold"),
        ({"duration_ms": 8 * 86_400_000}, "duration"),
        ({"keep_firing_for_ms": -1}, "keep_firing_for"),
        ({"labels": {"host": "a"}}, "labels.host"),
        ({"labels": {"bad-name": "a"}}, "labels.bad-name"),
        ({"group_by": ("miner", "miner")}, "group_by"),
        ({"group_by": ("rack",)}, "group_by"),
        ({"metric": "worker_hashrate", "operator": "<"}, "window"),
        ({"metric": "worker_hashrate", "window": "2h"}, "window"),
        ({"window": "5m"}, "window"),
        ({"metric": "worker_hashrate", "window": "1h", "relative_to": "1h"}, "relative_to"),
        ({"metric": "worker_hashrate", "window": "1h", "relative_to": "24h", "threshold": -0.5}, "threshold"),
        ({"confidence": 0.95}, "confidence"),
        ({"metric": "worker_hashrate", "window": "1h", "confidence": 0.9}, "confidence"),
        ({"metric": "worker_hashrate", "window": "1h", "confidence": 0.95, "operator": "=="}, "confidence"),
        ({"name": "  "}, "name"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(changes: dict, field: str) -> None:  # type: ignore[type-arg]
    bad = rule(**changes)
    refusals = check_rule(bad, spec_of(bad.metric))
    assert field in [r.field for r in refusals], refusals


def test_good_rules_pass() -> None:
    for good in (rule(), rule(metric="worker_hashrate", operator="<", threshold=1e12, window="1h",
                              confidence=0.95, group_by=("miner", "worker"), labels={"pool": "main"}),
                 rule(metric="pool_total_hashrate", operator="<", threshold=0.7, window="1h", relative_to="24h"),
                 rule(metric="cpu_usage", operator=">", threshold=90.0, labels={"host": "db1"}),
                 rule(metric="team_activity", operator="<", threshold=5.0, labels={"team": "x"})):
        spec = spec_of(good.metric, {"team_activity"})
        assert check_rule(good, spec) == [], good


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [(">", 5.0, True), (">", 4.0, False), (">=", 4.0, True), (">=", 3.9, False), ("<", 3.0, True),
     ("<", 4.0, False), ("<=", 4.0, True), ("<=", 4.1, False), ("==", 4.0, True), ("==", 4.5, False),
     ("!=", 4.5, True), ("!=", 4.0, False)],
)
def test_every_operator(operator: str, value: float, expected: bool) -> None:
    assert holds(rule(operator=operator, threshold=4.0), Reading("s", {}, T0_MS, value)) is expected


def test_no_value_is_neither_breach_nor_recovery() -> None:
    assert holds(rule(operator="<", threshold=1.0), Reading("s", {}, T0_MS, None)) is None


@pytest.mark.parametrize(
    ("operator", "lower", "value", "upper", "expected"),
    [
        ("<", 40.0, 60.0, 90.0, False),  # below the threshold, but noise explains it
        ("<", 20.0, 40.0, 70.0, True),  # even the upper bound is below: a real drop
        (">", 110.0, 150.0, 200.0, False),  # lower bound not above
        (">", 130.0, 150.0, 200.0, True),
        ("<", 0.0, 0.0, float("nan"), False),  # no shares, no known share size (upper null): cannot say
    ],
)
def test_confidence_judges_by_the_far_side_of_the_interval(
    operator: str, lower: float, value: float, upper: float, expected: bool,
) -> None:
    hashrate = rule(metric="worker_hashrate", operator=operator, threshold=80.0 if operator == "<" else 120.0,
                    window="1h", confidence=0.95)
    record = worker(T0_MS, hashrate=value, lower=lower, upper=upper)
    (reading,) = readings(hashrate, AGGREGATOR_METRICS["worker_hashrate"], record)
    assert holds(hashrate, reading) is expected


def test_a_relative_rule_compares_with_its_own_longer_window() -> None:
    drop = rule(metric="pool_total_hashrate", operator="<", threshold=0.7, window="1h", relative_to="24h")
    spec = AGGREGATOR_METRICS["pool_total_hashrate"]
    steady = pool(T0_MS, hashrate={"1h": 80.0, "24h": 100.0})
    dropped = pool(T0_MS, hashrate={"1h": 60.0, "24h": 100.0})
    empty = pool(T0_MS, hashrate={"1h": 60.0, "24h": None})
    assert [holds(drop, r) for rec in (steady, dropped, empty) for r in readings(drop, spec, rec)] == [
        False, True, None]


def test_windows_of_a_record_still_catching_up_say_nothing_and_liveness_still_counts() -> None:
    """The aggregator reading a backfill or its own lag: windows taken now lack data on its
    way, so a hashrate drop there is neither a breach nor a recovery."""
    drop = rule(metric="pool_total_hashrate", operator="<", threshold=0.7, window="1h", relative_to="24h")
    dropped = {"hashrate": {"1h": 10.0, "24h": 100.0}}
    (behind,) = readings(drop, AGGREGATOR_METRICS["pool_total_hashrate"], pool(T0_MS, catching_up=True, **dropped))
    (current,) = readings(drop, AGGREGATOR_METRICS["pool_total_hashrate"], pool(T0_MS, catching_up=False, **dropped))
    assert (holds(drop, behind), holds(drop, current)) == (None, True)
    slow = rule(metric="worker_hashrate", operator="<", threshold=80.0, window="1h", confidence=0.95)
    (muted,) = readings(slow, AGGREGATOR_METRICS["worker_hashrate"],
                        worker(T0_MS, hashrate=1.0, lower=0.0, upper=2.0, catching_up=True))
    assert holds(slow, muted) is None
    (online,) = readings(rule(), AGGREGATOR_METRICS["worker_online"], worker(T0_MS, online=False, catching_up=True))
    assert holds(rule(), online) is True  # liveness is judged at the data's own time already


def test_readings_of_each_figure_kind() -> None:
    record = worker(T0_MS, online=False, last_share_at_ms=T0_MS - 90_000)
    online = readings(rule(), AGGREGATOR_METRICS["worker_online"], record)
    silent = readings(rule(metric="worker_seconds_since_last_share"),
                      AGGREGATOR_METRICS["worker_seconds_since_last_share"], record)
    assert online[0].value == 0.0 and silent[0].value == 90.0
    luck = pool(T0_MS, luck={"64": 0.5, "128": 1.0, "256": None})
    got = readings(rule(metric="pool_luck", labels={"blocks": "64"}), AGGREGATOR_METRICS["pool_luck"], luck)
    assert [(r.labels["blocks"], r.value) for r in got] == [("64", 0.5)]
    assert readings(rule(labels={"pool": "other"}), AGGREGATOR_METRICS["worker_online"], record) == []
    assert readings(rule(), AGGREGATOR_METRICS["pool_active_workers"], record) == []  # not a pool record
    assert readings(rule(metric="team"), custom_spec("team"), record) == []


def test_a_fingerprint_is_the_rule_and_its_group_only() -> None:
    grouped = rule(group_by=("miner",), labels={"pool": "main"})
    a = group_labels(grouped, {"pool": "main", "miner": "m1", "worker": "w1"})
    b = group_labels(grouped, {"pool": "main", "miner": "m1", "worker": "w2"})
    c = group_labels(grouped, {"pool": "main", "miner": "m2", "worker": "w1"})
    assert a == b == {"pool": "main", "miner": "m1"}
    assert fingerprint(1, a) == fingerprint(1, b) != fingerprint(1, c)
    assert fingerprint(1, a) != fingerprint(2, a)
    assert fingerprint(1, {"pool": "m", "miner": "x"}) == fingerprint(1, {"miner": "x", "pool": "m"})
