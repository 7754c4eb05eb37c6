"""PromQL pass-through: `/api/query` and `/api/query_range` answer with Prometheus' own JSON."""

from __future__ import annotations

from typing import Annotated, Any, Final

import orjson
from fastapi import Depends, Query, Request, Response

from services.ingest.adapters.prometheus import (
    PrometheusNotConfigured,
    PrometheusRejected,
    PrometheusUnavailable,
)
from services.ingest.api.common_params import container, error_responses
from shared.http.auth import Scope, require_scope
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

router = guarded_router(tags=["query"])

_READ = Depends(require_scope(Scope.READ))
RETRY_AFTER_S: Final = "10"
MAX_QUERY_CHARS: Final = 16_384
# Prometheus parses these itself (RFC 3339 or unix seconds; durations like 15s or float seconds):
# passed through untouched so its own rules and messages apply.
PromQL = Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="A PromQL expression")]
Param = Annotated[str, Query(min_length=1, max_length=64)]
_RESPONSES: Final = {
    200: {"description": "Prometheus' own answer", "content": {"application/json": {"schema": {"type": "object"}}}},
    **error_responses(400, 401, 403, 422, 503),
}
_DOC: Final = (
    "Passed to the Prometheus at PROMETHEUS_URL; the answer is Prometheus' own JSON "
    "(`{\"status\": \"success\", \"data\": ...}`). Prometheus refusing the query (bad_data, execution) gives its "
    "status (400 or 422) with its message in the usual error shape; no Prometheus configured or reachable: 503."
)


async def _run(request: Request, method: str, params: dict[str, str | None]) -> Response:
    prometheus = container(request).prometheus
    call = prometheus.query if method == "query" else prometheus.query_range
    try:
        body = await call({k: v for k, v in params.items() if v is not None})
    except PrometheusNotConfigured as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": RETRY_AFTER_S}) from exc
    except PrometheusUnavailable as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": RETRY_AFTER_S}) from exc
    except PrometheusRejected as exc:
        raise ApiError(exc.status, f"Prometheus rejected the query: {exc.message}",
                       [{"field": "query.query", "message": exc.message, "error_type": exc.error_type}]) from exc
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/api/query", response_class=Response, responses=_RESPONSES, summary="PromQL instant query",
            description=_DOC)
async def query(
    request: Request,
    query: PromQL,
    time: Annotated[str | None, Query(min_length=1, max_length=64, description="Evaluation time; default now")] = None,
    timeout: Annotated[str | None, Query(min_length=1, max_length=64, description="Prometheus-side timeout")] = None,
    _: Any = _READ,
) -> Response:
    return await _run(request, "query", {"query": query, "time": time, "timeout": timeout})


@router.get("/api/query_range", response_class=Response, responses=_RESPONSES, summary="PromQL range query",
            description=_DOC)
async def query_range(
    request: Request,
    query: PromQL,
    start: Param,
    end: Param,
    step: Param,
    timeout: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    _: Any = _READ,
) -> Response:
    return await _run(request, "query_range",
                      {"query": query, "start": start, "end": end, "step": step, "timeout": timeout})
