"""Which channels hear an alert, which are muted, and the group an alert joins (pure).

- A channel hears an alert when every one of its matchers holds, the alert's
  severity is at least its `min_severity`, and, for a channel made with a
  miner's own key, the alert is about that miner (`labels.miner`).
- A silence mutes the alerts all its matchers hold for, from `starts_at` to
  `ends_at`: silenced alerts are not sent, and are sent if still firing when
  the silence ends.
- An inhibition rule mutes target alerts while a firing source alert has the
  same values of its `equal` labels (pool down mutes the pool's workers offline).
- Per channel, an alert joins the group its `group_by` labels name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from shared.labels import label_set_key

from .matchers import Matcher, MatcherError, matches_all, parse_matchers

__all__ = [
    "SEVERITIES",
    "InhibitRule",
    "Route",
    "Silence",
    "group_of",
    "inhibited",
    "parse_inhibit_rules",
    "routes_for",
    "silenced",
]

SEVERITIES: Final = ("info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class Route:
    channel_id: int
    name: str
    matchers: tuple[Matcher, ...] = ()
    min_severity: str = "info"
    miner: str | None = None  # a channel made with a miner's own key hears only that miner
    group_by: tuple[str, ...] = ()
    group_wait_ms: int = 30_000
    group_interval_ms: int = 300_000
    repeat_interval_ms: int = 4 * 3_600_000
    send_resolved: bool = True
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at_ms: int
    ends_at_ms: int

    def active(self, now_ms: int) -> bool:
        return self.starts_at_ms <= now_ms < self.ends_at_ms


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def routes_for(labels: Mapping[str, str], routes: Iterable[Route]) -> list[Route]:
    severity = _rank(labels.get("severity", "info"))
    return [r for r in routes
            if r.enabled and severity >= _rank(r.min_severity)
            and (r.miner is None or labels.get("miner") == r.miner)
            and matches_all(r.matchers, labels)]


def silenced(labels: Mapping[str, str], silences: Iterable[Silence], now_ms: int) -> str | None:
    """The id of a silence muting the alert now, or None."""
    for silence in silences:
        if silence.active(now_ms) and matches_all(silence.matchers, labels):
            return silence.id
    return None


def inhibited(labels: Mapping[str, str], firing: Sequence[Mapping[str, str]], rules: Iterable[InhibitRule]) -> bool:
    """Whether a firing source alert mutes this one (an alert never mutes itself)."""
    for rule in rules:
        if not matches_all(rule.target, labels):
            continue
        for source in firing:
            if source is labels or source == labels:
                continue
            if matches_all(rule.source, source) and all(source.get(n, "") == labels.get(n, "") for n in rule.equal):
                return True
    return False


def group_of(route: Route, labels: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """(group key, group labels): one notification group per channel and group_by values."""
    group = {name: labels.get(name, "") for name in route.group_by}
    return label_set_key(str(route.channel_id), group), group


def parse_inhibit_rules(data: Any) -> tuple[InhibitRule, ...]:
    """Alertmanager's `inhibit_rules` (a mapping holding the list, or the list): each with
    `source_matchers`, `target_matchers` (text or {name, op, value}) and `equal`.
    MatcherError names the rule and field that is wrong."""
    rules = data.get("inhibit_rules", []) if isinstance(data, Mapping) else data
    if not isinstance(rules, list):
        raise MatcherError("inhibit_rules", "must be a list")
    out = []
    for i, rule in enumerate(rules):
        where = f"inhibit_rules.{i}"
        if not isinstance(rule, Mapping):
            raise MatcherError(where, "must be a mapping")
        equal = rule.get("equal", [])
        if not isinstance(equal, list) or not all(isinstance(n, str) and n for n in equal):
            raise MatcherError(f"{where}.equal", "must be a list of label names")
        source = parse_matchers(rule.get("source_matchers"), f"{where}.source_matchers")
        target = parse_matchers(rule.get("target_matchers"), f"{where}.target_matchers")
        if not source or not target:
            raise MatcherError(where, "needs source_matchers and target_matchers")
        out.append(InhibitRule(source, target, tuple(equal)))
    return tuple(out)
