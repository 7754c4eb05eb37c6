"""Request and response bodies of the rules and alerts API (docs/contract.md section 3)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from shared.http.bodies import Text

from ..domain.rules import Rule, format_duration

__all__ = ["AlertIn", "AlertOut", "AlertsOut", "EvaluationOut", "RuleIn", "RuleOut", "RulesOut", "rule_out"]

MAX_LABELS: Final = 20
Name = Annotated[Text, Field(min_length=1, max_length=200)]
LabelValue = Annotated[Text, Field(max_length=256)]
Labels = Annotated[dict[Annotated[Text, Field(max_length=64)], LabelValue], Field(max_length=MAX_LABELS)]
Notes = Annotated[dict[Annotated[Text, Field(max_length=64)], Annotated[Text, Field(max_length=2000)]],
                  Field(max_length=MAX_LABELS)]
DurationText = Annotated[str, Field(max_length=16, description="30s, 5m, 1h, 2d or 0")]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    metric: Annotated[Text, Field(min_length=1, max_length=200,
                                  description="See GET /api/alert-rules/metrics")]
    operator: Annotated[str, Field(max_length=2, description=">, >=, <, <=, == or !=")]
    threshold: float = Field(allow_inf_nan=False,
                             description="The limit; for a relative rule the fraction of the relative_to window")
    duration: DurationText = "0"
    severity: Annotated[str, Field(max_length=16, description="info, warning, error or critical")] = "warning"
    labels: Labels = Field(default_factory=dict, description="Exact-match selectors on the series' labels")
    group_by: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=10)] = Field(
        default_factory=list, description="Label names: one alert per distinct value set")
    window: Annotated[str | None, Field(max_length=4, description="1m, 5m, 15m, 1h or 24h")] = None
    relative_to: Annotated[str | None, Field(max_length=4, description="A longer window: the rule compares "
                                             "with threshold x the series' own value over it")] = None
    confidence: float | None = Field(default=None, description="0.95: hashrate rules judge the interval's far side")
    keep_firing_for: DurationText = "0"
    description: Annotated[Text, Field(max_length=2000)] = ""
    annotations: Notes = Field(default_factory=dict)
    enabled: bool = True


class RuleOut(BaseModel):
    id: int
    name: str
    metric: str
    operator: str
    threshold: float
    duration: str
    severity: str
    labels: dict[str, str]
    group_by: list[str]
    window: str | None
    relative_to: str | None
    confidence: float | None
    keep_firing_for: str
    description: str
    annotations: dict[str, str]
    enabled: bool


class RulesOut(BaseModel):
    rules: list[RuleOut]


def rule_out(rule: Rule) -> RuleOut:
    return RuleOut(
        id=rule.id, name=rule.name, metric=rule.metric, operator=rule.operator, threshold=rule.threshold,
        duration=format_duration(rule.duration_ms), severity=rule.severity, labels=dict(rule.labels),
        group_by=list(rule.group_by), window=rule.window, relative_to=rule.relative_to, confidence=rule.confidence,
        keep_firing_for=format_duration(rule.keep_firing_for_ms), description=rule.description,
        annotations=dict(rule.annotations), enabled=rule.enabled,
    )


class AlertIn(BaseModel):
    """An alert raised by hand or by another system: firing until resolved."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    severity: Annotated[str, Field(max_length=16, description="info, warning, error or critical")] = "warning"
    labels: Labels = Field(default_factory=dict)
    description: Annotated[Text, Field(max_length=2000)] = ""
    annotations: Notes = Field(default_factory=dict)


class AlertOut(BaseModel):
    id: int
    rule_id: int | None
    name: str
    severity: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str
    value: float | None
    threshold: float | None
    starts_at: datetime
    fired_at: datetime | None
    ends_at: datetime | None
    end_reason: str | None
    updated_at: datetime


class AlertsOut(BaseModel):
    alerts: list[AlertOut]


class SeriesOut(BaseModel):
    fingerprint: str
    labels: dict[str, str]
    state: str = Field(description="inactive, pending or firing (the alert's, as stored)")
    value: float | None
    threshold: float | None


class RuleEvaluation(BaseModel):
    rule: RuleOut
    alerts: list[SeriesOut]


class EvaluationOut(BaseModel):
    evaluated_at: datetime
    rules: list[RuleEvaluation]
    note: str
