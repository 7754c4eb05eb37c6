"""A record against the rules that concern it: one observation per (rule, series) (pure).

An observation carries everything the group's owner needs, so the group's
state can live wherever its fingerprint is partitioned, not where the record
came in: a group (for example "workers offline in pool main") gathers series
from every input partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .catalogue import MetricSpec
from .conditions import alert_labels, fingerprint, group_labels, holds, limit_of
from .index import RuleIndex
from .records import Reading, Record, readings
from .rules import Rule

__all__ = ["Observation", "evaluate", "evaluate_rule"]


@dataclass(frozen=True, slots=True)
class Observation:
    fingerprint: str
    rule_id: int
    rule_version: int
    labels: Mapping[str, str]  # the alert's labels
    reading: Reading
    holds: bool | None
    limit: float | None


def evaluate_rule(rule: Rule, spec: MetricSpec, records: Iterable[Record]) -> list[Observation]:
    out = []
    for record in records:
        for reading in readings(rule, spec, record):
            group = group_labels(rule, reading.labels)
            out.append(Observation(fingerprint(rule.id, group), rule.id, rule.version, alert_labels(rule, group),
                                   reading, holds(rule, reading), limit_of(rule, reading)))
    return out


def evaluate(index: RuleIndex, record: Record) -> list[Observation]:
    out: list[Observation] = []
    for rule, spec in index.candidates(record):
        out += evaluate_rule(rule, spec, (record,))
    return out
