"""An alert's life: inactive -> pending -> firing -> resolved, per group of series (pure).

A group (one rule, one value set of its `group_by` labels) holds the latest
reading of each of its series. The condition holds for the group while it
holds for any of its series. Then:

- inactive -> pending when it starts to hold (`starts_at`);
- pending -> firing once it held for the rule's `duration`: at exactly
  `starts_at + duration`, whoever notices (a reading, or the timer);
- pending -> inactive when it stops holding first (stored as resolved, never
  published: nobody was told);
- firing -> resolved when it stops holding, or `keep_firing_for` after it last
  held if the rule keeps alerts firing against flapping;
- a series that sends nothing for `stale_after_ms` is dropped from its group:
  "data stopped" is not a recovery, but an alert cannot fire forever on data
  nobody refreshes either. A firing group whose every series went stale
  resolves at `last seen + stale_after_ms`, with the reason `data stopped`.

Every time in a transition is derived from the readings' own times and the
rule, never from when the step ran, so a replay after a crash produces the
identical transition (same fingerprint, status and `starts_at`), which
stores and consumers drop as a repeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .conditions import holds, limit_of
from .records import Reading
from .rules import Rule

__all__ = ["MAX_SERIES", "GroupState", "SeriesState", "Transition", "end", "observe", "reassess", "step"]

# Series a group keeps: a rule without group_by over every worker of a pool in an outage
# still writes a bounded state (beyond this, further series are judged but not kept).
MAX_SERIES = 5_000

Status = Literal["inactive", "pending", "firing"]


@dataclass(slots=True)
class SeriesState:
    reading: Reading  # kept whole: an edited rule re-judges it (reassess)
    holds: bool | None
    limit: float | None

    @property
    def value(self) -> float | None:
        return self.reading.value

    @property
    def seen_ms(self) -> int:
        return self.reading.at_ms


@dataclass(slots=True)
class GroupState:
    fingerprint: str
    rule_id: int
    labels: dict[str, str]  # the alert's labels
    rule_version: int = 0  # the rule's version when the group began reading what it reads
    status: Status = "inactive"
    starts_at_ms: int | None = None
    fired_at_ms: int | None = None
    last_true_ms: int | None = None
    value: float | None = None
    limit: float | None = None
    # The series that hold, at most MAX_SERIES of them (a series that does not hold has
    # no say in the group's condition, so it is not kept: the state stays as small as
    # what is wrong, and so does every write of it to the table's changelog).
    series: dict[str, SeriesState] = field(default_factory=dict)
    last: Reading | None = None  # the newest reading of any series, for people to see


@dataclass(frozen=True, slots=True)
class Transition:
    fingerprint: str
    rule_id: int | None
    status: Literal["pending", "firing", "resolved"]
    starts_at_ms: int
    at_ms: int  # when it happened: starts_at for pending, the firing time, the end
    labels: Mapping[str, str]
    value: float | None
    limit: float | None
    was_firing: bool = False  # resolved: whether anyone was told it fired
    reason: str = ""  # resolved: condition cleared, data stopped, rule deleted, rule changed


def observe(state: GroupState, reading: Reading, holds: bool | None, limit: float | None) -> bool:
    """Take the reading as its series' latest; False (ignored) when it is older than the one
    kept. Readings of one series arrive in order (one key, one partition), so only a kept
    series needs the check."""
    known = state.series.get(reading.series)
    if known is not None and known.seen_ms > reading.at_ms:
        return False
    if state.last is None or reading.at_ms >= state.last.at_ms:
        state.last = reading
    if holds is None:  # no data: the series keeps what it last said, and may go stale
        return True
    if holds:
        if known is not None or len(state.series) < MAX_SERIES:
            state.series[reading.series] = SeriesState(reading, holds, limit)
    elif known is not None:
        del state.series[reading.series]
    return True


def reassess(state: GroupState, rule: Rule) -> None:
    """Judge the kept readings again under an edited rule (new threshold, operator...)."""
    for series in state.series.values():
        series.holds = holds(rule, series.reading)
        series.limit = limit_of(rule, series.reading)


def _worst(rule: Rule, series: list[SeriesState]) -> SeriesState:
    if rule.operator in ("<", "<="):
        return min(series, key=lambda s: s.value if s.value is not None else float("inf"))
    return max(series, key=lambda s: s.value if s.value is not None else float("-inf"))


def _transition(state: GroupState, status: Literal["pending", "firing", "resolved"], at_ms: int,
                *, was_firing: bool = False, reason: str = "") -> Transition:
    assert state.starts_at_ms is not None
    return Transition(state.fingerprint, state.rule_id, status, state.starts_at_ms, at_ms, dict(state.labels),
                      state.value, state.limit, was_firing, reason)


def _close(state: GroupState, at_ms: int, reason: str) -> list[Transition]:
    out = []
    if state.status != "inactive" and state.starts_at_ms is not None:
        out.append(_transition(state, "resolved", max(at_ms, state.starts_at_ms),
                               was_firing=state.status == "firing", reason=reason))
    state.status = "inactive"
    state.starts_at_ms = state.fired_at_ms = state.last_true_ms = None
    return out


def step(state: GroupState, rule: Rule, now_ms: int, stale_after_ms: int) -> list[Transition]:
    """Move the group as far as its readings and `now_ms` allow; the transitions made."""
    stopped_at: int | None = None
    for key, series in list(state.series.items()):
        if not series.holds:  # judged again under an edited rule (reassess)
            del state.series[key]
        elif now_ms - series.seen_ms > stale_after_ms:
            del state.series[key]
            stopped_at = max(stopped_at or 0, series.seen_ms + stale_after_ms)
    true = list(state.series.values())
    out: list[Transition] = []
    if true:
        worst = _worst(rule, true)
        state.value, state.limit = worst.value, worst.limit
        newest = max(s.seen_ms for s in true)
        state.last_true_ms = max(state.last_true_ms or newest, newest)
        if state.status == "inactive":
            state.status = "pending"
            state.starts_at_ms = min(s.seen_ms for s in true)
            out.append(_transition(state, "pending", state.starts_at_ms))
        assert state.starts_at_ms is not None
        fires_at = state.starts_at_ms + rule.duration_ms
        if state.status == "pending" and now_ms >= fires_at:
            state.status = "firing"
            state.fired_at_ms = fires_at
            out.append(_transition(state, "firing", fires_at))
        return out
    if state.status == "inactive":
        return out
    if state.status == "firing" and state.last_true_ms is not None and rule.keep_firing_for_ms:
        keep_until = state.last_true_ms + rule.keep_firing_for_ms
        if now_ms < keep_until:
            return out
        return _close(state, keep_until, "condition cleared")
    if stopped_at is not None and not state.series:
        return _close(state, stopped_at, "data stopped")
    return _close(state, now_ms, "condition cleared")


def end(state: GroupState, now_ms: int, reason: str) -> list[Transition]:
    """The rule is gone or changed what it selects: the alert ends now."""
    state.series.clear()
    return _close(state, now_ms, reason)
