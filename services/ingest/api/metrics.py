"""The seed's metrics API: POSTs go through Kafka (`pool.metrics`), GETs read PostgreSQL.

A POST answers 202 once Kafka acknowledged the sample; the metrics persister
stores it a moment later, so a GET right after a POST may not show it yet.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import orjson
from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel

from services.ingest.adapters.metrics_persister import AnyEnvelope, MetricsUnavailable
from services.ingest.adapters.metrics_store import TimeRange
from services.ingest.api.common_params import (
    MINER_PARAM_PATTERN,
    TIME_PARAM_DOC,
    container,
    error_responses,
    invalid,
    time_range,
)
from services.ingest.api.metric_bodies import (
    MetricIn,
    MinerReportIn,
    PerformanceIn,
    metric_envelope,
    miner_envelope,
    performance_envelope,
)
from services.ingest.domain.custom_metrics import KeyQuotaReached, MetricConflict, SeriesLimitReached
from services.ingest.domain.metrics import (
    MAX_LABEL_NAME_CHARS,
    MAX_LABEL_VALUE_CHARS,
    MAX_LABELS,
    MAX_METRIC_NAME_CHARS,
    METRIC_NAME_PATTERN,
    MINER_REPORT_FIELDS,
)
from shared.events import NAME_PATTERN
from shared.http.auth import Principal, Scope, ensure_miner, require_scope
from shared.http.errors import ApiError
from shared.http.guard import guarded_router

router = guarded_router(tags=["metrics"])

DEFAULT_SPAN: Final = timedelta(hours=1)
DEFAULT_LIMIT: Final = 1000
MAX_LIMIT: Final = 10_000
_INGEST = Depends(require_scope(Scope.INGEST))
_READ = Depends(require_scope(Scope.READ))
_MINER_READ = Depends(require_scope(Scope.READ, miner=True))  # a miner's key reads its own miner's rows

From = Annotated[str | None, Query(alias="from", description=f"Inclusive start: {TIME_PARAM_DOC}. Default: `to` - 1 hour.")]
To = Annotated[str | None, Query(alias="to", description=f"Exclusive end: {TIME_PARAM_DOC}. Default: now.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most rows returned; the newest are kept.")]


class Accepted(BaseModel):
    accepted: int
    id: str


async def _publish(request: Request, envelope: AnyEnvelope) -> None:
    try:
        await container(request).metrics_persister.publish([envelope])
    except MetricsUnavailable as exc:
        raise ApiError(503, f"metrics cannot be written now: {exc.reason}",
                       headers={"Retry-After": str(exc.retry_after_s)}) from exc


@router.post(
    "/api/metrics", status_code=202, response_model=Accepted,
    responses=error_responses(400, 401, 403, 409, 422, 503),
    summary="Record a custom metric sample",
    description=(
        "Writes the sample to Kafka and, once acknowledged, to the service's `/metrics` exporter: "
        "a gauge is set, a counter is increased by `value` (>= 0), a histogram observes `value` "
        f"(default Prometheus buckets). A name has at most {MAX_METRIC_NAME_CHARS} characters; a sample "
        f"at most {MAX_LABELS} labels, names of at most {MAX_LABEL_NAME_CHARS} and values of at most "
        f"{MAX_LABEL_VALUE_CHARS} characters (else **422**). One name keeps one type and one set of label "
        "names: a sample that disagrees gets **409**. A series (name + label values) belongs to the API key "
        "that created it: one key may own at most `CUSTOM_METRICS_MAX_SERIES_PER_KEY` series and the "
        "exporter holds at most `CUSTOM_METRICS_MAX_SERIES` in all; a sample of a new series past either "
        "gets **422** and is not written anywhere. Samples of existing series are always taken, whoever "
        "sends them. A series not updated for `CUSTOM_METRICS_SERIES_TTL_S` seconds expires: it leaves "
        "`/metrics` and frees its key's quota (posted again, it starts anew, a counter from 0). Refusals "
        "are counted in `chimera_custom_metrics_refused_total{key_id, reason}`, reason `key_quota`, "
        "`series_limit` or `conflict`. "
        "Names starting with `chimera_`, `ingest_`, `process_` or `python_` are reserved."
    ),
)
async def post_metric(body: MetricIn, request: Request, principal: Principal = _INGEST) -> Accepted:
    c = container(request)
    try:
        # Checked and reserved before producing, so a refused sample is written nowhere.
        admission = c.custom_metrics.admit(body.name, body.type, body.labels, key_id=principal.key_id)
    except KeyQuotaReached as exc:
        raise ApiError(422, str(exc), [{"field": "body.labels", "message":
                       f"new series refused: this API key's quota of {exc.max_series_per_key} series "
                       "is reached"}]) from exc
    except SeriesLimitReached as exc:
        raise ApiError(422, str(exc), [{"field": "body.labels", "message":
                       f"new series refused: the limit of {exc.max_series} distinct series is reached"}]) from exc
    except MetricConflict as exc:
        raise ApiError(409, str(exc), [{"field": f"body.{exc.field}", "message":
                       f"expected {exc.existing}, got {exc.requested}"}]) from exc
    envelope = metric_envelope(body, datetime.now(UTC))
    try:
        await _publish(request, envelope)
    except BaseException:
        c.custom_metrics.cancel(admission)
        raise
    c.custom_metrics.record(admission, body.value)
    return Accepted(accepted=1, id=str(envelope.id))


class MetricOut(BaseModel):
    id: uuid.UUID | None
    name: str
    value: float
    labels: dict[str, str]
    type: str
    ts: datetime


class MetricsOut(BaseModel):
    metrics: list[MetricOut]


def _labels_filter(raw: str | None) -> dict[str, str]:
    if raw is None:
        return {}
    try:
        # orjson refuses a lone surrogate ("\ud800", or its raw bytes, which Starlette
        # has already decoded to U+FFFD) as invalid JSON: NUL is the one unstorable left.
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid("query.labels", 'expected a JSON object of label values, e.g. {"host":"a"}') from None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise invalid("query.labels", "expected a JSON object whose values are strings")
    if any("\x00" in text for pair in parsed.items() for text in pair):
        raise invalid("query.labels", "must not contain the NUL character (U+0000)")
    return parsed


@router.get(
    "/api/metrics", response_model=MetricsOut, responses=error_responses(401, 403, 422),
    summary="Read custom metric samples",
    description="Samples with `from` <= ts < `to`, newest first. Label filter: `labels`, a JSON object "
                'every returned sample\'s labels contain exactly (e.g. `labels={"host":"a"}`).',
)
async def get_metrics(
    request: Request,
    name: Annotated[str | None, Query(max_length=MAX_METRIC_NAME_CHARS, pattern=METRIC_NAME_PATTERN,
                                      description="Metric name; all names when absent")] = None,
    start: From = None,
    end: To = None,
    labels: Annotated[str | None, Query(max_length=8192, description='JSON object, e.g. {"host":"a"}')] = None,
    limit: Limit = DEFAULT_LIMIT,
    _: Any = _READ,
) -> MetricsOut:
    since, until = time_range(start, end, default_span=DEFAULT_SPAN)
    rows = await container(request).metrics_store.metrics(
        name=name, labels=_labels_filter(labels), within=TimeRange(since, until), limit=limit)
    return MetricsOut(metrics=[MetricOut(**r) for r in rows])


@router.post("/api/metrics/performance", status_code=202, response_model=Accepted,
             responses=error_responses(400, 401, 403, 422, 503), summary="Record host/service resource usage")
async def post_performance(body: PerformanceIn, request: Request, _: Any = _INGEST) -> Accepted:
    envelope = performance_envelope(body, datetime.now(UTC))
    await _publish(request, envelope)
    return Accepted(accepted=1, id=str(envelope.id))


class PerformanceOut(BaseModel):
    id: uuid.UUID | None
    host: str
    service: str
    cpu_usage: float | None
    memory_usage: float | None
    disk_usage: float | None
    network_in_bytes: int | None
    network_out_bytes: int | None
    load_average: float | None
    labels: dict[str, str]
    ts: datetime


class PerformanceListOut(BaseModel):
    performance: list[PerformanceOut]


@router.get("/api/metrics/performance", response_model=PerformanceListOut, responses=error_responses(401, 403, 422),
            summary="Read host/service resource usage", description="Rows with `from` <= ts < `to`, newest first.")
async def get_performance(
    request: Request,
    host: Annotated[str | None, Query(min_length=1, max_length=255, pattern=NAME_PATTERN)] = None,
    service: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9._-]*$")] = None,
    start: From = None,
    end: To = None,
    limit: Limit = DEFAULT_LIMIT,
    _: Any = _READ,
) -> PerformanceListOut:
    since, until = time_range(start, end, default_span=DEFAULT_SPAN)
    rows = await container(request).metrics_store.performance(
        host=host, service=service, within=TimeRange(since, until), limit=limit)
    return PerformanceListOut(performance=[PerformanceOut(**r) for r in rows])


@router.post(
    "/api/metrics/miner", status_code=202, response_model=Accepted, responses=error_responses(400, 401, 403, 422, 503),
    summary="Record what a miner reports about itself",
    description=f"Sets {', '.join(MINER_REPORT_FIELDS)} of the worker's row for the minute `timestamp` falls in "
                "(fields left out keep their value). Share counts belong to the aggregator and are never written here.",
)
async def post_miner(body: MinerReportIn, request: Request, _: Any = _INGEST) -> Accepted:
    envelope = miner_envelope(body, datetime.now(UTC))
    await _publish(request, envelope)
    return Accepted(accepted=1, id=str(envelope.id))


class MinerRowOut(BaseModel):
    pool: str
    worker: str
    ts: datetime
    accepted: int
    rejected: int
    stale: int
    difficulty_accepted: float
    best_difficulty: float
    last_share_at: datetime | None
    blocks_found: int
    reported_hashrate: float | None
    share_difficulty: float | None
    user_agent: str | None


class MinerRowsOut(BaseModel):
    miner: str
    rows: list[MinerRowOut]


@router.get("/api/metrics/miner/{minerId}", response_model=MinerRowsOut, responses=error_responses(401, 403, 422),
            summary="Read a miner's minute rows",
            description="One row per pool, worker and minute with `from` <= ts < `to`, newest first. "
                        "A `miner:<name>` key reads its own miner only: another miner is 403 (`path.minerId`).")
async def get_miner(
    request: Request,
    miner_id: Annotated[str, Path(alias="minerId", min_length=1, max_length=128, pattern=MINER_PARAM_PATTERN)],
    pool: Annotated[str | None, Query(min_length=1, max_length=64, pattern=NAME_PATTERN)] = None,
    worker: Annotated[str | None, Query(min_length=1, max_length=64, pattern=NAME_PATTERN)] = None,
    start: From = None,
    end: To = None,
    limit: Limit = DEFAULT_LIMIT,
    principal: Principal = _MINER_READ,
) -> MinerRowsOut:
    ensure_miner(principal, miner_id)
    since, until = time_range(start, end, default_span=DEFAULT_SPAN)
    rows = await container(request).metrics_store.miner(
        miner_id, pool=pool, worker=worker, within=TimeRange(since, until), limit=limit)
    return MinerRowsOut(miner=miner_id, rows=[MinerRowOut(**r) for r in rows])
