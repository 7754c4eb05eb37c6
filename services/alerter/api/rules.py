"""`/api/alert-rules`: rules written with the admin scope, read with the read scope.

A rule is checked against the metric catalogue before it is stored: an
unknown metric, operator, severity, duration, window or label name is a 422
naming the field (`body.<field>`). Every alerter process reads the change
within ALERTER_RULES_RELOAD_S and evaluates a new or edited rule over every
current series at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from shared.http.auth import Scope, require_scope
from shared.http.bodies import error_responses
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

from ..adapters.alert_queries import AlertQueries
from ..adapters.rule_store import RuleExists, RuleStore
from ..domain.catalogue import AGGREGATOR_METRICS, PERFORMANCE_METRICS, custom_spec, spec_of
from ..domain.rules import Rule, check_rule, parse_duration_ms
from .bodies import EvaluationOut, RuleEvaluation, RuleIn, RuleOut, RulesOut, SeriesOut, rule_out

__all__ = ["rules_router"]

_ADMIN = Depends(require_scope(Scope.ADMIN))
_READ = Depends(require_scope(Scope.READ))
RuleId = Annotated[int, Path(alias="ruleId", ge=1, le=2**63 - 1, description="The rule's id")]


def _unprocessable(details: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "the rule cannot be evaluated", details)


def _not_found(rule_id: int) -> ApiError:
    return ApiError(404, f"no rule {rule_id}", [{"field": "path.ruleId", "message": "not found"}])


async def _rule_of(body: RuleIn, rule_id: int, store: RuleStore) -> Rule:
    """The body as a domain rule, or a 422 naming every field that is wrong."""
    details: list[dict[str, str]] = []
    durations: dict[str, int] = {}
    for name in ("duration", "keep_firing_for"):
        try:
            durations[name] = parse_duration_ms(getattr(body, name))
        except ValueError as exc:
            details.append({"field": f"body.{name}", "message": str(exc)})
            durations[name] = 0
    rule = Rule(id=rule_id, name=body.name, metric=body.metric, operator=body.operator, threshold=body.threshold,
                severity=body.severity, duration_ms=durations["duration"], labels=dict(body.labels),
                group_by=tuple(body.group_by), window=body.window, relative_to=body.relative_to,
                confidence=body.confidence, keep_firing_for_ms=durations["keep_firing_for"],
                description=body.description, annotations=dict(body.annotations), enabled=body.enabled)
    spec = spec_of(rule.metric, await store.custom_metric_names())
    details += [{"field": f"body.{r.field}", "message": r.message} for r in check_rule(rule, spec)]
    if details:
        raise _unprocessable(details)
    return rule


def rules_router(store: RuleStore, alerts: AlertQueries) -> APIRouter:
    router = guarded_router(tags=["alert rules"])

    @router.post("/api/alert-rules", status_code=201, response_model=RuleOut,
                 responses=error_responses(400, 401, 403, 409, 413, 422), summary="Create an alert rule",
                 description="Admin scope. Names are unique (409 for a taken one).")
    async def create_rule(body: RuleIn, _: Any = _ADMIN) -> RuleOut:
        rule = await _rule_of(body, 0, store)
        try:
            return rule_out(await store.create(rule))
        except RuleExists as exc:
            raise ApiError(409, str(exc), [{"field": "body.name", "message": "taken"}]) from exc

    @router.get("/api/alert-rules", response_model=RulesOut, responses=error_responses(401, 403),
                summary="List alert rules")
    async def list_rules(_: Any = _READ) -> RulesOut:
        return RulesOut(rules=[rule_out(r) for r in await store.all()])

    @router.get("/api/alert-rules/metrics", responses=error_responses(401, 403),
                summary="The metrics a rule may use",
                description="Name, entity, labels, unit, windows and whether a confidence applies: the "
                            "aggregator's figures, the performance metrics, and every custom metric posted "
                            "in the last 7 days.")
    async def metric_catalogue(_: Any = _READ) -> dict[str, list[dict[str, Any]]]:
        custom = sorted(await store.custom_metric_names())
        specs = [*AGGREGATOR_METRICS.values(), *PERFORMANCE_METRICS.values(), *(custom_spec(n) for n in custom)]
        return {"metrics": [spec.as_dict() for spec in specs]}

    @router.post("/api/alert-rules/evaluate", response_model=EvaluationOut, responses=error_responses(401, 403),
                 summary="Every enabled rule against the current figures",
                 description="Admin scope. Per enabled rule, its groups (at most 100 each, firing first): "
                             "their labels, state, latest value and the limit it is compared with, as the "
                             "alerter last judged them (it writes them behind every ALERTER_TICK_S).")
    async def evaluate_rules(_: Any = _ADMIN) -> EvaluationOut:
        rules = [r for r in await store.all() if r.enabled]
        groups = await alerts.groups([r.id for r in rules], 100)
        return EvaluationOut(
            evaluated_at=datetime.now(UTC),
            rules=[RuleEvaluation(rule=rule_out(r), alerts=[
                SeriesOut(fingerprint=g["fingerprint"], labels=dict(g["labels"]), state=g["status"],
                          value=g["value"], threshold=g["limit_value"]) for g in groups.get(r.id, [])])
                   for r in rules],
            note="states as the alerter judged them at its last tick; a rule added in the last seconds "
                 "may have no groups yet",
        )

    @router.get("/api/alert-rules/{ruleId}", response_model=RuleOut, responses=error_responses(401, 403, 404),
                summary="Get an alert rule")
    async def get_rule(rule_id: RuleId, _: Any = _READ) -> RuleOut:
        rule = await store.get(rule_id)
        if rule is None:
            raise _not_found(rule_id)
        return rule_out(rule)

    @router.put("/api/alert-rules/{ruleId}", response_model=RuleOut,
                responses=error_responses(400, 401, 403, 404, 409, 413, 422), summary="Replace an alert rule",
                description="Admin scope. An edit of what the rule reads (metric, window, relative_to, labels, "
                            "group_by, confidence) resolves its alerts and starts over; an edit of how it "
                            "judges (threshold, operator, duration...) judges the current readings at once.")
    async def replace_rule(rule_id: RuleId, body: RuleIn, _: Any = _ADMIN) -> RuleOut:
        rule = await _rule_of(body, rule_id, store)
        try:
            updated = await store.update(rule)
        except RuleExists as exc:
            raise ApiError(409, str(exc), [{"field": "body.name", "message": "taken"}]) from exc
        if updated is None:
            raise _not_found(rule_id)
        return rule_out(updated)

    @router.delete("/api/alert-rules/{ruleId}", status_code=204, responses=error_responses(401, 403, 404),
                   summary="Delete an alert rule", response_class=Response,
                   description="Admin scope. Its firing alerts resolve (reason `rule deleted`).")
    async def delete_rule(rule_id: RuleId, _: Any = _ADMIN) -> Response:
        if not await store.delete(rule_id):
            raise _not_found(rule_id)
        return Response(status_code=204)

    return router
