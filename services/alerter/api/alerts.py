"""`/api/alerts`: read with the read scope; raised and resolved by hand with the admin scope.

A key limited to a miner (`miner:<name>`) reads that miner's alerts only
(`labels.miner`), filtered in the query itself: another miner's alert is
answered as one that does not exist, so alert ids tell it nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from shared.events import MINER_PATTERN
from shared.http.auth import Principal, Scope, ensure_miner, require_scope
from shared.http.bodies import error_responses, invalid
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

from ..adapters.alert_queries import AlertQueries
from ..domain.rules import SEVERITIES
from .bodies import AlertIn, AlertOut, AlertsOut

__all__ = ["alerts_router"]

_ADMIN = Depends(require_scope(Scope.ADMIN))
_READ_OR_MINER = Depends(require_scope(Scope.READ, miner=True))
AlertId = Annotated[int, Path(alias="alertId", ge=1, le=2**63 - 1, description="The alert's id")]


def _out(row: dict[str, Any]) -> AlertOut:
    return AlertOut(**{name: row[name] for name in AlertOut.model_fields})


def _not_found(alert_id: int) -> ApiError:
    return ApiError(404, f"no alert {alert_id}", [{"field": "path.alertId", "message": "not found"}])


def alerts_router(alerts: AlertQueries) -> APIRouter:
    router = guarded_router(tags=["alerts"])

    @router.post("/api/alerts", response_model=AlertOut, status_code=201,
                 responses=error_responses(400, 401, 403, 413, 422),
                 summary="Raise an alert by hand (or from another system)",
                 description="Admin scope. Stored firing and published on chimera.alerts. The same name and "
                             "labels while that alert is open answer the open alert (200) instead of a second.")
    async def raise_alert(body: AlertIn, response: Response, _: Any = _ADMIN) -> AlertOut:
        if body.severity not in SEVERITIES:
            raise invalid("body.severity", f"must be one of {', '.join(SEVERITIES)}")
        notes = dict(body.annotations)
        if body.description:
            notes.setdefault("description", body.description)
        notes.setdefault("summary", body.name)
        row, created = await alerts.raise_alert(body.name, body.severity, body.labels, notes)
        if not created:
            response.status_code = 200
        return _out(row)

    @router.put("/api/alerts/{alertId}/resolve", response_model=AlertOut, responses=error_responses(401, 403, 404),
                summary="Resolve an alert by hand",
                description="Admin scope. A firing alert's resolution is published on chimera.alerts. An alert "
                            "a rule raised and whose condition still holds stays resolved: the rule raises it "
                            "again only once its condition has cleared and holds anew.")
    async def resolve_alert(alert_id: AlertId, _: Any = _ADMIN) -> AlertOut:
        row = await alerts.resolve(alert_id)
        if row is None:
            raise _not_found(alert_id)
        return _out(row)

    @router.get("/api/alerts", response_model=AlertsOut, responses=error_responses(401, 403, 422),
                summary="List alerts",
                description="Newest first; every filter is optional. A `miner:<name>` key gets that miner's "
                            "alerts only (`labels.miner`); its `miner` filter, if given, must be that miner "
                            "(else 403, `query.miner`).")
    async def list_alerts(
        status: Literal["pending", "firing", "resolved"] | None = None,
        severity: Literal["info", "warning", "error", "critical"] | None = None,
        rule: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="A rule's id")] = None,
        miner: Annotated[str | None, Query(max_length=128, pattern=MINER_PATTERN)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        principal: Principal = _READ_OR_MINER,
    ) -> AlertsOut:
        if principal.miner is not None:
            if miner is not None:
                ensure_miner(principal, miner, field="query.miner")
            miner = principal.miner
        rows = await alerts.list(status=status, severity=severity, rule_id=rule, miner=miner, limit=limit,
                                 offset=offset)
        return AlertsOut(alerts=[_out(r) for r in rows])

    @router.get("/api/alerts/{alertId}", response_model=AlertOut, responses=error_responses(401, 403, 404),
                summary="Get an alert",
                description="A `miner:<name>` key gets 404 for another miner's alert, as for one that does not exist.")
    async def get_alert(alert_id: AlertId, principal: Principal = _READ_OR_MINER) -> AlertOut:
        row = await alerts.get(alert_id, miner=principal.miner)
        if row is None:
            raise _not_found(alert_id)
        return _out(row)

    return router
