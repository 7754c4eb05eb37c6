"""The alerter's application core: rules in force, records to observations, groups stepped.

No faust and no I/O here: the faust app (app.py) feeds it records, group
states and the clock, and writes what it returns; the unit tests drive it
directly.

Rule changes (from the rule store, see `set_rules`):
- a new rule, or an edit of what a rule reads (metric, window, relative_to,
  labels, group_by, confidence), is evaluated over every current series at
  once (`rules_to_backfill`); an edit of that kind also ends the rule's
  current alerts ("rule changed"): they restart from the new readings;
- an edit of how the rule judges (threshold, operator, duration, severity,
  keep_firing_for, description) judges the readings each group keeps at
  once, keeping pending and firing times while the condition still holds;
- a deleted or disabled rule ends its alerts ("rule deleted"/"rule disabled").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .domain.annotations import annotations
from .domain.catalogue import MetricSpec, custom_spec, spec_of
from .domain.evaluate import Observation, evaluate, evaluate_rule
from .domain.index import RuleIndex
from .domain.lifecycle import GroupState, Transition, end, observe, reassess, step
from .domain.records import Record
from .domain.rules import Rule, check_rule

__all__ = ["Engine", "RuleChanges"]

_SELECTION = ("metric", "window", "relative_to", "labels", "group_by", "confidence")


@dataclass(slots=True)
class RuleChanges:
    backfill: list[int] = field(default_factory=list)  # rules to evaluate over every current series
    gone: dict[int, str] = field(default_factory=dict)  # rule id -> why its alerts end


class Engine:
    def __init__(self, *, stale_after_ms: int) -> None:
        self.stale_after_ms = stale_after_ms
        self.rules: dict[int, tuple[Rule, MetricSpec]] = {}
        self.index = RuleIndex()
        self.ended: dict[int, str] = {}  # rules gone, and why
        # Rule id -> the version since which it reads what it reads: older observations are void.
        self._read_since: dict[int, int] = {}

    # --- rules -------------------------------------------------------------------------------

    def set_rules(self, rules: Iterable[Rule]) -> RuleChanges:
        """Take the store's rules; what the change means for current series and alerts.
        A rule the catalogue cannot evaluate (a custom metric nobody posts) is left out."""
        changes = RuleChanges()
        fresh: dict[int, tuple[Rule, MetricSpec]] = {}
        for rule in rules:
            # The API checked a custom metric's name when the rule was written.
            spec = spec_of(rule.metric) or custom_spec(rule.metric)
            if check_rule(rule, spec):
                continue
            if not rule.enabled:
                if rule.id in self.rules:
                    changes.gone[rule.id] = "rule disabled"
                continue
            fresh[rule.id] = (rule, spec)
            old = self.rules.get(rule.id)
            if old is None or old[0].version != rule.version:
                # New, or edited: judged over every current series at once (an edited
                # threshold may make an inactive group's series hold).
                changes.backfill.append(rule.id)
            if old is not None and any(getattr(old[0], name) != getattr(rule, name) for name in _SELECTION):
                self._read_since[rule.id] = rule.version  # its alerts end at their next step
        for rule_id in self.rules.keys() - fresh.keys():
            changes.gone.setdefault(rule_id, "rule deleted")
        self.rules = fresh
        self.index = RuleIndex.of(fresh.values())
        self.ended.update(changes.gone)
        for rule_id in fresh:
            self.ended.pop(rule_id, None)
        return changes

    def observations(self, record: Record) -> list[Observation]:
        return evaluate(self.index, record)

    def backfill(self, rule_ids: Iterable[int], records: Iterable[Record]) -> list[Observation]:
        """The given rules over the given (current) records."""
        records = list(records)
        out: list[Observation] = []
        for rule_id in rule_ids:
            entry = self.rules.get(rule_id)
            if entry is not None:
                out += evaluate_rule(entry[0], entry[1], records)
        return out

    # --- groups --------------------------------------------------------------------------------

    def apply(self, state: GroupState | None, obs: Observation, now_ms: int) -> tuple[GroupState, list[Transition]]:
        """One observation into its group, then the group stepped at `now_ms`."""
        since = self._read_since.get(obs.rule_id, 0)
        if state is None:
            state = GroupState(obs.fingerprint, obs.rule_id, dict(obs.labels), rule_version=since)
        entry = self.rules.get(obs.rule_id)
        if entry is None or obs.rule_version < since:
            return state, []  # the rule is gone, or the observation read what the rule no longer reads
        made: list[Transition] = []
        if state.rule_version < since:  # the rule reads something else now: the old alert ends first
            made = end(state, now_ms, "rule changed")
            state.rule_version = since
        state.labels = dict(obs.labels)
        observe(state, obs.reading, obs.holds, obs.limit)
        return state, made + step(state, entry[0], now_ms, self.stale_after_ms)

    def tick(self, state: GroupState, now_ms: int) -> list[Transition]:
        """What time alone does to a group: a duration completed, a stale series, keep_firing_for
        over, its rule gone, changed or edited."""
        rule_id = state.rule_id
        entry = self.rules.get(rule_id)
        if entry is None:
            return end(state, now_ms, self.ended.get(rule_id, "rule deleted"))
        since = self._read_since.get(rule_id, 0)
        if state.rule_version < since:
            made = end(state, now_ms, "rule changed")
            state.rule_version = since
            return made
        if state.series:
            reassess(state, entry[0])
        return step(state, entry[0], now_ms, self.stale_after_ms)

    def describe(self, transition: Transition) -> tuple[str, str, dict[str, str]]:
        """(name, severity, annotations) of a transition's alert."""
        entry = self.rules.get(transition.rule_id or -1)
        if entry is None:
            labels = transition.labels
            return labels.get("alertname", "alert"), labels.get("severity", "warning"), {
                "summary": labels.get("alertname", "alert"),
                "description": f"resolved: {transition.reason}" if transition.reason else ""}
        rule, spec = entry
        return rule.name, rule.severity, annotations(rule, transition, spec.unit)
