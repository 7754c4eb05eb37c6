"""Alert rules in PostgreSQL (`alert_rules`, migrations 0003 and 0010), as domain `Rule`s.

The API writes them; every alerter process reads the enabled ones back when
their fingerprint (count and latest `updated_at`) changes, so an edit
reaches evaluation within one reload interval. A rule's `version` is its
`updated_at` in ms: it moves with every edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

import asyncpg

from ..domain.rules import Rule

__all__ = ["RuleExists", "RuleStore", "rule_from_row"]

_COLUMNS: Final = """id, name, metric, operator, threshold, severity, duration, matchers, group_by,
eval_window_name, relative_to, confidence, keep_firing_for, description, annotations, enabled,
(extract(epoch FROM updated_at) * 1000)::bigint AS version_ms, created_at, updated_at"""

_INSERT: Final = f"""
INSERT INTO alert_rules (name, metric, operator, threshold, severity, duration, matchers, group_by,
                         eval_window_name, relative_to, confidence, keep_firing_for, description, annotations,
                         enabled)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
RETURNING {_COLUMNS}
"""

_UPDATE: Final = f"""
UPDATE alert_rules SET name = $2, metric = $3, operator = $4, threshold = $5, severity = $6, duration = $7,
       matchers = $8, group_by = $9, eval_window_name = $10, relative_to = $11, confidence = $12,
       keep_firing_for = $13, description = $14, annotations = $15, enabled = $16
WHERE id = $1
RETURNING {_COLUMNS}
"""

_STATE: Final = "SELECT count(*) AS n, max(updated_at) AS latest FROM alert_rules"


class RuleExists(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a rule named {name!r} exists")
        self.name = name


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def rule_from_row(row: Mapping[str, Any]) -> Rule:
    return Rule(
        id=row["id"], name=row["name"], metric=row["metric"], operator=row["operator"],
        threshold=row["threshold"], severity=row["severity"], duration_ms=_ms(row["duration"]),
        labels=dict(row["matchers"]), group_by=tuple(row["group_by"]), window=row["eval_window_name"],
        relative_to=row["relative_to"], confidence=row["confidence"],
        keep_firing_for_ms=_ms(row["keep_firing_for"]), description=row["description"],
        annotations=dict(row["annotations"]), enabled=row["enabled"], version=row["version_ms"],
    )


def _args(rule: Rule) -> tuple[Any, ...]:
    return (rule.name, rule.metric, rule.operator, rule.threshold, rule.severity,
            timedelta(milliseconds=rule.duration_ms), dict(rule.labels), list(rule.group_by), rule.window,
            rule.relative_to, rule.confidence, timedelta(milliseconds=rule.keep_firing_for_ms), rule.description,
            dict(rule.annotations), rule.enabled)


class RuleStore:
    def __init__(self, pool: asyncpg.Pool, *, timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def create(self, rule: Rule) -> Rule:
        try:
            row = await self._pool.fetchrow(_INSERT, *_args(rule), timeout=self._timeout_s)
        except asyncpg.UniqueViolationError as exc:
            raise RuleExists(rule.name) from exc
        assert row is not None
        return rule_from_row(row)

    async def update(self, rule: Rule) -> Rule | None:
        try:
            row = await self._pool.fetchrow(_UPDATE, rule.id, *_args(rule), timeout=self._timeout_s)
        except asyncpg.UniqueViolationError as exc:
            raise RuleExists(rule.name) from exc
        return rule_from_row(row) if row is not None else None

    async def delete(self, rule_id: int) -> bool:
        status = await self._pool.execute("DELETE FROM alert_rules WHERE id = $1", rule_id, timeout=self._timeout_s)
        return status.endswith(" 1")

    async def get(self, rule_id: int) -> Rule | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM alert_rules WHERE id = $1", rule_id,
                                        timeout=self._timeout_s)
        return rule_from_row(row) if row is not None else None

    async def by_name(self, name: str) -> Rule | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM alert_rules WHERE name = $1", name,
                                        timeout=self._timeout_s)
        return rule_from_row(row) if row is not None else None

    async def all(self, *, enabled_only: bool = False) -> list[Rule]:
        where = "WHERE enabled" if enabled_only else ""
        rows = await self._pool.fetch(f"SELECT {_COLUMNS} FROM alert_rules {where} ORDER BY id",
                                      timeout=self._timeout_s)
        return [rule_from_row(r) for r in rows]

    async def state(self) -> tuple[int, Any]:
        """(count, latest updated_at): changes whenever a rule is added, edited or deleted."""
        row = await self._pool.fetchrow(_STATE, timeout=self._timeout_s)
        assert row is not None
        return row["n"], row["latest"]

    async def custom_metric_names(self, limit: int = 10_000) -> set[str]:
        """Names of the custom metrics posted in the last 7 days (a rule may use them)."""
        rows = await self._pool.fetch(
            "SELECT DISTINCT name FROM metrics WHERE ts > now() - interval '7 days' ORDER BY name LIMIT $1",
            limit, timeout=self._timeout_s)
        return {r["name"] for r in rows}
