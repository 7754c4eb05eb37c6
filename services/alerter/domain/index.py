"""Which rules a record can concern, without looping every rule over every record (pure).

Rules are indexed by the entity of their metric (custom metrics by their
name) and, when they select on labels, by one of their selectors: a record
meets the rules without selectors of its kind plus those filed under one of
its own label values; the other selectors are checked on the few left.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .catalogue import MetricSpec
from .records import Record
from .rules import Rule

__all__ = ["RuleIndex"]


@dataclass(slots=True)
class RuleIndex:
    rules: dict[int, tuple[Rule, MetricSpec]] = field(default_factory=dict)
    _open: dict[str, list[int]] = field(default_factory=dict)  # kind -> rules without selectors
    _by_label: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)  # (kind, name, value)

    @classmethod
    def of(cls, rules: Iterable[tuple[Rule, MetricSpec]]) -> RuleIndex:
        index = cls()
        for rule, spec in rules:
            if rule.enabled:
                index.add(rule, spec)
        return index

    @staticmethod
    def _kind(spec: MetricSpec, metric: str) -> str:
        return f"custom:{metric}" if spec.entity == "custom" else spec.entity

    def add(self, rule: Rule, spec: MetricSpec) -> None:
        self.rules[rule.id] = (rule, spec)
        kind = self._kind(spec, rule.metric)
        selectors = sorted(_native(rule))
        if not selectors:
            self._open.setdefault(kind, []).append(rule.id)
        else:
            name, value = selectors[0]
            self._by_label.setdefault((kind, name, value), []).append(rule.id)

    def candidates(self, record: Record) -> list[tuple[Rule, MetricSpec]]:
        """The enabled rules whose selectors the record's labels meet."""
        kind = f"custom:{record.figures.get('name')}" if record.entity == "custom" else record.entity
        ids = list(self._open.get(kind, ()))
        for name, value in record.labels.items():
            ids += self._by_label.get((kind, name, value), ())
        out = []
        for rule_id in ids:
            rule, spec = self.rules[rule_id]
            if all(record.labels.get(name) == value for name, value in _native(rule)):
                out.append((rule, spec))
        return out


def _native(rule: Rule) -> list[tuple[str, str]]:
    """The rule's selectors on labels a record carries itself (a luck series adds `blocks`,
    which `records.readings` checks)."""
    return [(name, value) for name, value in rule.labels.items() if name != "blocks"]
