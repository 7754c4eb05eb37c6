"""Alert rules: what a rule says, and the checks a rule must pass (pure).

A rule compares one metric's series with a threshold:

    value(window) <operator> threshold                      (absolute)
    value(window) <operator> threshold x value(relative_to) (relative: a fraction
                                                             of the series' own longer window)

`labels` select series by exact value; `group_by` names the labels that split
the rule into one alert per distinct value set (none: one alert for the
rule). With `confidence` (hashrate metrics), `<` holds only when the
interval's upper bound is below the threshold and `>` only when its lower
bound is above it: Poisson noise of a slow worker is not a drop.

Durations are written `30s`, `5m`, `1h`, `2d` (or `0`) and kept as `*_ms`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared.durations import format_duration, parse_duration_ms

from .catalogue import WINDOWS, MetricSpec

__all__ = [
    "CONFIDENCES",
    "MAX_DURATION_MS",
    "OPERATORS",
    "SEVERITIES",
    "FieldRefusal",
    "Rule",
    "check_rule",
    "format_duration",
    "parse_duration_ms",
    "severity_rank",
]

OPERATORS: Final = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES: Final = ("info", "warning", "error", "critical")
# The interval the aggregator publishes (hashrate_lower/upper) is the 95% one.
CONFIDENCES: Final = (0.95,)
MAX_DURATION_MS: Final = 7 * 86_400_000
LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class FieldRefusal:
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    name: str
    metric: str
    operator: str
    threshold: float
    severity: str = "warning"
    duration_ms: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    window: str | None = None
    relative_to: str | None = None
    confidence: float | None = None
    keep_firing_for_ms: int = 0
    description: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    version: int = 0  # changes with every edit (the store's updated_at in ms)

    def with_changes(self, **changes: Any) -> Rule:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(changes)
        return Rule(**values)


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def check_rule(rule: Rule, spec: MetricSpec | None) -> list[FieldRefusal]:
    """Every reason the rule cannot be evaluated, each naming its field; [] when it can.

    `spec` is the metric's catalogue entry (None: an unknown metric)."""
    out: list[FieldRefusal] = []
    if not rule.name.strip():
        out.append(FieldRefusal("name", "must not be blank"))
    if spec is None:
        out.append(FieldRefusal("metric", f"unknown metric {rule.metric!r}: see GET /api/alert-rules/metrics"))
    if rule.operator not in OPERATORS:
        out.append(FieldRefusal("operator", f"must be one of {', '.join(OPERATORS)}"))
    if rule.severity not in SEVERITIES:
        out.append(FieldRefusal("severity", f"must be one of {', '.join(SEVERITIES)}"))
    if not math.isfinite(rule.threshold):
        out.append(FieldRefusal("threshold", "must be a finite number"))
    for name, value in (("duration", rule.duration_ms), ("keep_firing_for", rule.keep_firing_for_ms)):
        if not 0 <= value <= MAX_DURATION_MS:
            out.append(FieldRefusal(name, "must be between 0 and 7d"))
    out += _check_labels(rule, spec)
    out += _check_window(rule, spec)
    return out


def _check_labels(rule: Rule, spec: MetricSpec | None) -> list[FieldRefusal]:
    out = []
    allowed = spec.labels if spec is not None and spec.entity != "custom" else None
    for where, names in (("labels", list(rule.labels)), ("group_by", list(rule.group_by))):
        for name in names:
            if LABEL_NAME.fullmatch(name) is None:
                out.append(FieldRefusal(f"{where}.{name}" if where == "labels" else where,
                                        f"{name!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, 64 at most)"))
            elif allowed is not None and name not in allowed:
                out.append(FieldRefusal(f"{where}.{name}" if where == "labels" else where,
                                        f"{rule.metric} has no label {name!r} (its labels: {', '.join(allowed)})"))
    if len(set(rule.group_by)) != len(rule.group_by):
        out.append(FieldRefusal("group_by", "names a label twice"))
    return out


def _check_window(rule: Rule, spec: MetricSpec | None) -> list[FieldRefusal]:
    out = []
    windowed = spec is not None and spec.windowed
    for name, value in (("window", rule.window), ("relative_to", rule.relative_to)):
        if value is None:
            continue
        if not windowed:
            out.append(FieldRefusal(name, f"{rule.metric} has no windows"))
        elif value not in WINDOWS:
            out.append(FieldRefusal(name, f"must be one of {', '.join(WINDOWS)}"))
    if windowed and rule.window is None:
        out.append(FieldRefusal("window", f"{rule.metric} needs a window: one of {', '.join(WINDOWS)}"))
    if rule.relative_to is not None:
        if rule.relative_to == rule.window:
            out.append(FieldRefusal("relative_to", "must be another window than `window`"))
        if not (math.isfinite(rule.threshold) and rule.threshold > 0):
            out.append(FieldRefusal("threshold", "a relative rule's threshold is a positive fraction"))
    if rule.confidence is not None:
        if spec is None or not spec.interval:
            out.append(FieldRefusal("confidence", "only hashrate metrics carry an interval"))
        elif rule.confidence not in CONFIDENCES:
            out.append(FieldRefusal("confidence", "must be 0.95 (the interval the aggregator publishes)"))
        elif rule.operator not in ("<", "<=", ">", ">="):
            out.append(FieldRefusal("confidence", "applies to <, <=, > and >= only"))
    return out
