"""Matchers, routes, silences, inhibition and Alertmanager-style group timing, with a fake clock."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from services.notifier.domain.grouping import Flush, GroupedAlert, NotificationGroup, add, flush
from services.notifier.domain.matchers import Matcher, MatcherError, parse_matchers
from services.notifier.domain.routing import InhibitRule, Route, Silence, group_of, inhibited, routes_for, silenced

pytestmark = pytest.mark.unit

T0 = 1_767_225_600_000
S = 1_000
OFFLINE = {"alertname": "worker offline", "severity": "warning", "pool": "main", "miner": "m1", "worker": "w1"}


@pytest.mark.parametrize(
    ("op", "value", "label", "expected"),
    [("=", "m1", "m1", True), ("=", "m1", "m2", False), ("!=", "m1", "m2", True), ("!=", "m1", "m1", False),
     ("=~", "m.*", "m42", True), ("=~", "m", "m42", False),  # anchored at both ends
     ("!~", "m[0-9]+", "rig", True), ("!~", "m[0-9]+", "m7", False), ("=", "", None, True)],
)
def test_matchers_mean_what_they_mean_in_alertmanager(op: str, value: str, label: str | None,
                                                       expected: bool) -> None:
    labels = {} if label is None else {"miner": label}
    assert Matcher.of("miner", value, op).matches(labels) is expected


@pytest.mark.parametrize(("raw", "field"), [({"a": "b"}, None), ([{"name": "a", "value": "(", "op": "=~"}], "m.0.value"),
                                             ([{"name": "a", "value": "b", "op": "~="}], "m.0.op"),
                                             ([{"name": "a"}], "m.0"), ("a=b", "m")])
def test_matchers_parse_or_name_what_is_wrong(raw: object, field: str | None) -> None:
    if field is None:
        assert parse_matchers(raw, "m") == (Matcher.of("a", "b"),)
        return
    with pytest.raises(MatcherError) as info:
        parse_matchers(raw, "m")
    assert info.value.field == field


def test_an_alert_goes_to_every_matching_channel_at_or_above_its_severity() -> None:
    routes = [Route(1, "all"), Route(2, "pool main", matchers=(Matcher.of("pool", "main"),)),
              Route(3, "critical only", min_severity="critical"), Route(4, "off", enabled=False),
              Route(5, "alice's own", miner="alice"), Route(6, "m1's own", miner="m1"),
              Route(7, "not m1", matchers=(Matcher.of("miner", "m1", "!="),))]
    assert [r.channel_id for r in routes_for(OFFLINE, routes)] == [1, 2, 6]
    assert [r.channel_id for r in routes_for({**OFFLINE, "severity": "critical"}, routes)] == [1, 2, 3, 6]


def test_silences_mute_while_active_and_only_what_they_match() -> None:
    night = Silence("s1", (Matcher.of("worker", "w[0-9]", "=~"),), T0, T0 + 60 * S)
    assert silenced(OFFLINE, [night], T0 + S) == "s1"
    assert silenced(OFFLINE, [night], T0 + 60 * S) is None  # ended
    assert silenced(OFFLINE, [night], T0 - 1) is None  # not begun
    assert silenced({**OFFLINE, "worker": "rig"}, [night], T0 + S) is None


def test_a_firing_source_inhibits_targets_with_equal_labels() -> None:
    rule = InhibitRule(source=(Matcher.of("alertname", "pool down"),), target=(Matcher.of("alertname", "worker offline"),),
                       equal=("pool",))
    pool_down = {"alertname": "pool down", "severity": "critical", "pool": "main"}
    assert inhibited(OFFLINE, [pool_down], [rule])
    assert not inhibited({**OFFLINE, "pool": "other"}, [pool_down], [rule])
    assert not inhibited(pool_down, [pool_down], [rule])  # never itself


def test_groups_split_by_channel_and_group_by_values() -> None:
    route = Route(1, "ops", group_by=("pool", "miner"))
    a, labels = group_of(route, OFFLINE)
    b, _ = group_of(route, {**OFFLINE, "worker": "w2"})
    c, _ = group_of(route, {**OFFLINE, "miner": "m2"})
    d, _ = group_of(Route(2, "other", group_by=("pool", "miner")), OFFLINE)
    assert labels == {"pool": "main", "miner": "m1"} and a == b and len({a, c, d}) == 3


def alert(worker: str, status: str = "firing", starts: str = "2026-01-01T00:00:00Z") -> GroupedAlert:
    labels = {**OFFLINE, "worker": worker}
    return GroupedAlert(f"fp-{worker}", status, starts, labels, {"labels": labels})


ROUTE = Route(1, "ops", group_wait_ms=30 * S, group_interval_ms=300 * S, repeat_interval_ms=3_600 * S)


def never_muted(_: Mapping[str, str]) -> bool:
    return False


def sent(f: Flush | None) -> list[tuple[str, str]]:
    return [] if f is None else [(a.fingerprint, a.status) for a in f.alerts]


def test_alerts_arriving_within_group_wait_go_out_in_one_message() -> None:
    group = NotificationGroup.new("g", ROUTE, {}, T0)
    for i in range(50):
        assert add(group, alert(f"w{i}"))
    assert flush(group, ROUTE, T0 + 29 * S, never_muted) is None  # still waiting
    first = flush(group, ROUTE, T0 + 30 * S, never_muted)
    assert first is not None and len(first.firing) == 50 and first.idempotency_key == "g:1"
    assert flush(group, ROUTE, T0 + 330 * S, never_muted) is None  # nothing new at the next interval


def test_unchanged_firing_repeats_after_repeat_interval_and_resolution_is_told() -> None:
    group = NotificationGroup.new("g", ROUTE, {}, T0)
    add(group, alert("w1"))
    assert sent(flush(group, ROUTE, T0 + 30 * S, never_muted)) == [("fp-w1", "firing")]
    assert flush(group, ROUTE, T0 + 3_000 * S, never_muted) is None
    repeat = flush(group, ROUTE, T0 + 3_630 * S, never_muted)
    assert sent(repeat) == [("fp-w1", "firing")] and repeat is not None and repeat.sequence == 2
    assert not add(group, alert("w1"))  # the same record again: a repeat
    add(group, alert("w1", "resolved"))
    assert sent(flush(group, ROUTE, T0 + 3_930 * S, never_muted)) == [("fp-w1", "resolved")]
    assert group.empty


def test_a_resolution_nobody_heard_fire_is_not_sent() -> None:
    group = NotificationGroup.new("g", ROUTE, {}, T0)
    add(group, alert("w1"))
    add(group, alert("w1", "resolved"))  # cleared within group_wait
    assert flush(group, ROUTE, T0 + 30 * S, never_muted) is None and group.empty


def test_send_resolved_false_keeps_resolutions_quiet() -> None:
    quiet = Route(1, "ops", group_wait_ms=0, send_resolved=False)
    group = NotificationGroup.new("g", quiet, {}, T0)
    add(group, alert("w1"))
    assert sent(flush(group, quiet, T0, never_muted)) == [("fp-w1", "firing")]
    add(group, alert("w1", "resolved"))
    assert flush(group, quiet, T0 + 300 * S, never_muted) is None and group.empty


def test_a_silenced_alert_goes_out_when_the_silence_ends_if_still_firing() -> None:
    group = NotificationGroup.new("g", ROUTE, {}, T0)
    add(group, alert("w1"))
    silence = Silence("s1", (Matcher.of("worker", "w1"),), T0, T0 + 200 * S)
    at = T0 + 30 * S
    assert flush(group, ROUTE, at, lambda labels: silenced(labels, [silence], at) is not None) is None
    later = T0 + 330 * S
    resumed = flush(group, ROUTE, later, lambda labels: silenced(labels, [silence], later) is not None)
    assert sent(resumed) == [("fp-w1", "firing")]


def test_a_new_instance_of_an_alert_is_new_to_people() -> None:
    group = NotificationGroup.new("g", ROUTE, {}, T0)
    add(group, alert("w1"))
    flush(group, ROUTE, T0 + 30 * S, never_muted)
    add(group, alert("w1", "resolved"))
    add(group, alert("w1", starts="2026-01-01T01:00:00Z"))  # fired again before the next interval
    assert not add(group, alert("w1", "firing", starts="2026-01-01T00:00:00Z"))  # the old one: ignored
    assert sent(flush(group, ROUTE, T0 + 330 * S, never_muted)) == [("fp-w1", "firing")]
