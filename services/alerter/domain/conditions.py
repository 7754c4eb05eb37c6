"""Whether a rule's condition holds for one reading, and who an alert is (pure).

`holds` answers True, False, or None when the reading carries no value to
compare (a window without shares, a relative rule whose baseline is
missing): no data is neither a breach nor a recovery.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Final

from shared.labels import label_set_key

from .records import Reading
from .rules import Rule

__all__ = ["alert_labels", "fingerprint", "group_labels", "holds", "limit_of"]

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}


def limit_of(rule: Rule, reading: Reading) -> float | None:
    """The value the reading is compared with: the threshold, or for a relative rule the
    threshold's fraction of the baseline window."""
    if rule.relative_to is None:
        return rule.threshold
    return None if reading.baseline is None else rule.threshold * reading.baseline


def holds(rule: Rule, reading: Reading) -> bool | None:
    limit = limit_of(rule, reading)
    if limit is None:
        return None
    value = reading.value
    if rule.confidence is not None:
        # The interval's far side must be past the limit: a drop that noise explains is not one.
        if rule.operator in ("<", "<="):
            value = reading.upper
        elif rule.operator in (">", ">="):
            value = reading.lower
        if value is None:
            return False if reading.value is not None else None
    if value is None:
        return None
    return _COMPARE[rule.operator](value, limit)


def group_labels(rule: Rule, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels of the group a series falls in: the rule's selectors and its group_by labels."""
    out = dict(rule.labels)
    for name in rule.group_by:
        out[name] = labels.get(name, "")
    return out


def alert_labels(rule: Rule, group: Mapping[str, str]) -> dict[str, str]:
    return {"alertname": rule.name, "severity": rule.severity, **group}


def fingerprint(rule_id: int, group: Mapping[str, str]) -> str:
    """Stable across processes and restarts: the rule's id and the group's label set."""
    return label_set_key(str(rule_id), group)
