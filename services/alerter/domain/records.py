"""What the alerter reads, as plain data, and the readings a rule takes from it (pure).

A `Record` is one source record made plain: its series key (the snapshot
key, `host:<host>` for performance metrics, `custom:<name>{labels}`), the
entity it describes, its labels, when it was computed (`at_ms`) and its
figures. A rule takes `Reading`s from it: one per series it describes (a pool
record carries one luck series per block count), with the value its window
selects, the interval bounds beside it, and the baseline of a relative rule.
A windowed reading of a record the aggregator marked `catching_up` has no
value: no data, neither a breach nor a recovery.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .catalogue import LUCK_BLOCKS, MetricSpec
from .rules import Rule

__all__ = ["Reading", "Record", "readings", "selects"]

_NUMBER: Final = (int, float)


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    entity: str  # pool, miner, worker, performance, custom
    labels: Mapping[str, str]
    at_ms: int
    figures: Mapping[str, Any]  # snapshot figures; {metric: value} for the metrics API


@dataclass(frozen=True, slots=True)
class Reading:
    series: str  # the series' own key (a record may carry several series of one metric)
    labels: Mapping[str, str]
    at_ms: int
    value: float | None
    lower: float | None = None
    upper: float | None = None
    baseline: float | None = None  # the relative rule's longer window


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, _NUMBER) and math.isfinite(value):
        return float(value)
    return None


def _by_window(figures: Mapping[str, Any], name: str, window: str | None) -> float | None:
    values = figures.get(name)
    if not isinstance(values, Mapping) or window is None:
        return None
    return _number(values.get(window))


def selects(rule: Rule, labels: Mapping[str, str]) -> bool:
    """The rule's exact-match selectors all hold for the labels."""
    return all(labels.get(name) == value for name, value in rule.labels.items())


def readings(rule: Rule, spec: MetricSpec, record: Record) -> list[Reading]:
    """The rule's readings of a record (none when the record is not the metric's kind or
    the rule's selectors do not match)."""
    if record.entity != spec.entity:
        return []
    if spec.entity == "custom":
        if record.figures.get("name") != rule.metric or not selects(rule, record.labels):
            return []
        return [Reading(record.key, record.labels, record.at_ms, _number(record.figures.get("value")))]
    figures = record.figures
    if spec.name != "pool_luck" and not selects(rule, record.labels):
        return []
    if spec.entity == "performance":
        if rule.metric not in figures:
            return []
        return [Reading(record.key, record.labels, record.at_ms, _number(figures.get(rule.metric)))]
    if spec.name == "pool_luck":
        luck = figures.get("luck") if isinstance(figures.get("luck"), Mapping) else {}
        out = []
        for blocks in LUCK_BLOCKS:
            labels = {**record.labels, "blocks": blocks}
            if selects(rule, labels):
                out.append(Reading(f"{record.key}#{blocks}", labels, record.at_ms, _number(luck.get(blocks))))
        return out
    if spec.windowed and figures.get("catching_up") is True:
        # The aggregator is still reading old event time (a restart's lag, a node's backfill):
        # windows taken now lack data that is on its way, so they say nothing yet.
        return [Reading(record.key, record.labels, record.at_ms, None)]
    if spec.windowed:
        reading = Reading(
            record.key, record.labels, record.at_ms,
            value=_by_window(figures, spec.figure, rule.window),
            lower=_by_window(figures, "hashrate_lower", rule.window) if spec.interval else None,
            upper=_by_window(figures, "hashrate_upper", rule.window) if spec.interval else None,
            baseline=_by_window(figures, spec.figure, rule.relative_to) if rule.relative_to else None,
        )
        return [reading]
    if spec.figure == "last_share_at_ms":
        last = figures.get("last_share_at_ms")
        value = (record.at_ms - last) / 1000 if isinstance(last, int) and not isinstance(last, bool) else None
        return [Reading(record.key, record.labels, record.at_ms, value)]
    return [Reading(record.key, record.labels, record.at_ms, _number(figures.get(spec.figure)))]
