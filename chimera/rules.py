"""`chimera rules load|list`: an alert rule pack (deploy/rules/*.yaml) into `alert_rules`.

A pack is a YAML (or JSON) mapping: `rules`, a list of rules with the API's
fields, and `custom_metrics`, the custom metric names its rules may use.
Rules are matched by name, so a pack can be loaded again after an edit:
a rule that differs is updated, a missing one created, an equal one left
untouched (an UPDATE would move `updated_at` and make every alerter reload
for nothing). Rules in the table but not in the pack are never deleted.

Every rule is checked before anything is written: one refusal loads nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import asyncpg
import yaml

from services.alerter.adapters.rule_store import RuleExists, RuleStore
from services.alerter.domain.catalogue import AGGREGATOR_METRICS, PERFORMANCE_METRICS, spec_of
from services.alerter.domain.rules import Rule, check_rule, parse_duration_ms
from shared.settings import ServiceSettings

__all__ = ["LoadReport", "Pack", "PackError", "Refusal", "load_pack", "parse_pack", "read_pack",
           "run_rules_command"]

_REQUIRED: Final = ("name", "metric", "operator", "threshold")
_OPTIONAL: Final = ("duration", "severity", "labels", "group_by", "window", "relative_to", "confidence",
                    "keep_firing_for", "description", "annotations", "enabled")
_PACK_KEYS: Final = ("rules", "custom_metrics")
PACK: Final = "(pack)"  # what a refusal names when it is about the file, not one rule


class PackError(Exception):
    """The file cannot be read, or is not a rule pack at all."""


@dataclass(frozen=True, slots=True)
class Refusal:
    rule: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class PackRule:
    rule: Rule
    # Without `enabled` in the file the stored value stands: reloading the pack
    # must not re-enable a rule an operator switched off through the API.
    sets_enabled: bool


@dataclass(frozen=True, slots=True)
class Pack:
    rules: tuple[PackRule, ...]
    custom_metrics: frozenset[str]


@dataclass
class LoadReport:
    outcomes: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # (name, outcome, changed)
    refusals: list[Refusal] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for _, done, _ in self.outcomes if done == outcome)

    def summary(self) -> str:
        return (f"{len(self.outcomes)} rules: {self.count('created')} created, {self.count('updated')} updated, "
                f"{self.count('unchanged')} unchanged")


def read_pack(path: Path) -> Any:
    """The file's data (JSON for `.json`, YAML otherwise); PackError when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PackError(f"{path}: {exc}") from exc


def _text(value: Any, where: str, out: list[str]) -> str:
    if not isinstance(value, str):
        out.append(where)
        return ""
    return value


def _duration(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{value!r} is not a duration such as 30s, 5m, 1h")
    # YAML reads a bare `0` as an int; every other duration needs its unit, which str() keeps out.
    return parse_duration_ms(str(value))


def _number(value: Any) -> float | None:
    # bool is an int in Python, but `threshold: true` is a mistake, not 1.0.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# Stand-ins for required fields that are missing or mistyped: the rule is still built so that
# check_rule can report its other fields too (a refused pack is never written anyway).
_STAND_INS: Final = {"metric": "", "operator": "", "threshold": 0.0}


def _rule(given: Mapping[str, Any], name: str) -> tuple[PackRule, list[Refusal]]:
    # An optional field written as null (`window: ~`) means the same as leaving it out.
    entry = {key: value for key, value in given.items() if value is not None or key in _REQUIRED}
    refusals = [Refusal(name, str(key), "is not a rule field") for key in entry
                if key not in (*_REQUIRED, *_OPTIONAL)]
    refusals += [Refusal(name, key, "is required") for key in _REQUIRED if key not in entry]
    values: dict[str, Any] = {"id": 0, "name": name, **_STAND_INS}
    for key in ("metric", "operator", "severity", "description", "window", "relative_to"):
        if key in entry:
            if isinstance(entry[key], str):
                values[key] = entry[key]
            else:
                refusals.append(Refusal(name, key, "must be a string (quote it in YAML)"))
    for key in ("threshold", "confidence"):
        if key in entry:
            number = _number(entry[key])
            if number is not None and math.isfinite(number):
                values[key] = number
            else:
                refusals.append(Refusal(name, key, "must be a finite number"))
    for key, target in (("duration", "duration_ms"), ("keep_firing_for", "keep_firing_for_ms")):
        if key in entry:
            try:
                values[target] = _duration(entry[key])
            except ValueError as exc:
                refusals.append(Refusal(name, key, str(exc)))
    for key in ("labels", "annotations"):
        if key in entry:
            mapping = entry[key]
            if not isinstance(mapping, Mapping):
                refusals.append(Refusal(name, key, "must be a mapping of names to strings"))
                continue
            bad: list[str] = []
            values[key] = {_text(k, f"{key}.{k}", bad): _text(v, f"{key}.{k}", bad) for k, v in mapping.items()}
            refusals += [Refusal(name, where, "names and values must be strings (quote them in YAML)")
                         for where in bad]
    if "group_by" in entry:
        labels = entry["group_by"]
        if isinstance(labels, list) and all(isinstance(label, str) for label in labels):
            values["group_by"] = tuple(labels)
        else:
            refusals.append(Refusal(name, "group_by", "must be a list of label names"))
    if "enabled" in entry:
        if isinstance(entry["enabled"], bool):
            values["enabled"] = entry["enabled"]
        else:
            refusals.append(Refusal(name, "enabled", "must be true or false"))
    return PackRule(Rule(**values), "enabled" in entry), refusals


def parse_pack(data: Any) -> tuple[Pack, list[Refusal]]:
    """The pack's rules, and every refusal of its shape and field types (check_pack does the rest)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
        return Pack((), frozenset()), [Refusal(PACK, "rules", "a pack is a mapping with a list under `rules`")]
    refusals = [Refusal(PACK, str(key), "is not a pack key") for key in data if key not in _PACK_KEYS]
    custom = data.get("custom_metrics") or []
    if not isinstance(custom, list) or not all(isinstance(name, str) and name.strip() for name in custom):
        refusals.append(Refusal(PACK, "custom_metrics", "must be a list of metric names"))
        custom = []
    for name in custom:
        if name in AGGREGATOR_METRICS or name in PERFORMANCE_METRICS:
            refusals.append(Refusal(PACK, "custom_metrics", f"{name!r} is a catalogue metric, not a custom one"))
    rules: list[PackRule] = []
    seen: set[str] = set()
    for number, entry in enumerate(data["rules"], start=1):
        given = entry.get("name") if isinstance(entry, Mapping) else None
        name = given if isinstance(given, str) and given.strip() else f"rule #{number}"
        if not isinstance(entry, Mapping):
            refusals.append(Refusal(name, "rule", "must be a mapping of fields"))
            continue
        if given is not None and name != given:
            refusals.append(Refusal(name, "name", "must be a non-blank string"))
            continue
        if name in seen:
            refusals.append(Refusal(name, "name", "appears more than once in the pack"))
        seen.add(name)
        rule, rule_refusals = _rule(entry, name)
        refusals += rule_refusals
        rules.append(rule)
    return Pack(tuple(rules), frozenset(custom)), refusals


def check_pack(pack: Pack, posted: set[str] | frozenset[str] = frozenset()) -> list[Refusal]:
    """check_rule on every rule; a custom metric must be declared in the pack or already posted."""
    known = pack.custom_metrics | posted
    out = []
    for item in pack.rules:
        for refusal in check_rule(item.rule, spec_of(item.rule.metric, known)):
            message = refusal.message
            if refusal.field == "metric":
                message += "; a custom metric must be listed under custom_metrics"
            out.append(Refusal(item.rule.name, refusal.field, message))
    return out


def _changed(wanted: Rule, stored: Rule) -> tuple[str, ...]:
    return tuple(name for name in Rule.__dataclass_fields__ if name not in ("id", "version")
                 and getattr(wanted, name) != getattr(stored, name))


async def _upsert(conn: asyncpg.Connection, item: PackRule) -> tuple[str, tuple[str, ...]]:
    # RuleStore only calls fetchrow/fetch/execute, which a connection has as well: the whole
    # pack goes in the caller's transaction, so one that fails halfway loads nothing.
    store = RuleStore(cast(asyncpg.Pool, conn))
    stored = await store.by_name(item.rule.name)
    if stored is None:
        try:
            # A savepoint: the unique violation of a concurrent writer must not abort the pack.
            async with conn.transaction():
                await store.create(item.rule)
            return "created", ()
        except RuleExists:  # written meanwhile through the API: compare with that one
            stored = await store.by_name(item.rule.name)
            assert stored is not None
    wanted = item.rule.with_changes(id=stored.id, version=stored.version,
                                    enabled=item.rule.enabled if item.sets_enabled else stored.enabled)
    changed = _changed(wanted, stored)
    if not changed:
        return "unchanged", ()
    await store.update(wanted)
    return "updated", changed


async def load_pack(pool: asyncpg.Pool, data: Any) -> LoadReport:
    """Check the pack (the file's data) and, only if nothing is refused, upsert its rules by name."""
    pack, refusals = parse_pack(data)
    posted = await RuleStore(pool).custom_metric_names()
    # A field refused for its type holds a stand-in: check_rule would only refuse it again.
    refused = {(r.rule, r.field) for r in refusals}
    report = LoadReport(refusals=refusals + [r for r in check_pack(pack, posted)
                                             if (r.rule, r.field) not in refused])
    if report.refusals:
        return report
    async with pool.acquire() as conn, conn.transaction():
        for item in pack.rules:
            outcome, changed = await _upsert(conn, item)
            report.outcomes.append((item.rule.name, outcome, changed))
    return report


async def run_rules_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    from shared.db.pool import create_pool

    data: Any = None
    if args.action == "load":
        try:
            data = read_pack(Path(args.file))
        except PackError as exc:
            print(f"chimera rules: {exc}", file=sys.stderr)
            return 2
    pool = await create_pool(settings)
    try:
        if args.action == "list":
            rules = await RuleStore(pool).all()
            for rule in rules:
                print(f"{rule.name:<36} {rule.metric:<28} {rule.operator:<2} {rule.threshold:<10g} "
                      f"{'enabled' if rule.enabled else 'disabled'}")
            if not rules:
                print("no alert rules")
            return 0
        report = await load_pack(pool, data)
    finally:
        await pool.close()
    if report.refusals:
        for refusal in report.refusals:
            print(f"chimera rules: {refusal}", file=sys.stderr)
        print(f"chimera rules: nothing loaded ({len(report.refusals)} refused)", file=sys.stderr)
        return 2
    for name, outcome, changed in report.outcomes:
        print(f"{outcome:<9} {name}" + (f" ({', '.join(changed)})" if changed else ""))
    print(report.summary())
    return 0
