"""Bits the metrics, stats, dashboards and query routers share: the container, time-range parameters."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from fastapi import Request
from pydantic import BaseModel

from services.ingest.domain.metrics import MINER_PARAM_PATTERN
from shared.http.errors import ApiError

__all__ = ["MINER_PARAM_PATTERN", "ErrorOut", "container", "error_responses", "invalid", "parse_time", "time_range"]

if TYPE_CHECKING:  # app.py imports these routers; importing it back at run time would be circular
    from services.ingest.bootstrap import Container

_RFC3339: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII)
_EPOCH_MS: Final = re.compile(r"-?\d{1,15}", re.ASCII)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
TIME_PARAM_DOC: Final = "RFC 3339 with offset (e.g. 2026-01-01T00:00:00Z) or integer epoch milliseconds"


class ErrorOut(BaseModel):
    """The one error shape (CONTRACT.md section 3)."""

    error: str
    details: list[dict[str, object]]


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` entries for these error statuses, and 503: every route here
    needs PostgreSQL (the key store at least), which may be unreachable for a while."""
    out: dict[int | str, dict[str, object]] = {status: {"model": ErrorOut} for status in statuses}
    out.setdefault(503, {"model": ErrorOut,
                         "description": "PostgreSQL (or Kafka) is unreachable; retry after Retry-After"})
    return out


def container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


def invalid(field: str, message: str) -> ApiError:
    """A 422 in the same shape FastAPI's own validation errors get."""
    return ApiError(422, "request is invalid", [{"field": field, "message": message}])


def parse_time(value: str, field: str) -> datetime:
    if _EPOCH_MS.fullmatch(value):
        try:
            return _EPOCH + timedelta(milliseconds=int(value))
        except OverflowError:
            raise invalid(field, "epoch milliseconds out of range") from None
    if _RFC3339.fullmatch(value):
        try:
            return datetime.fromisoformat(value.upper()).astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise invalid(field, f"expected {TIME_PARAM_DOC}")


def time_range(start: str | None, end: str | None, *, default_span: timedelta,
               default_end: datetime | None = None, start_field: str = "query.from",
               end_field: str = "query.to") -> tuple[datetime, datetime]:
    """[start, end): end defaults to `default_end` (now), start to end - default_span."""
    end_at = parse_time(end, end_field) if end is not None else (default_end or datetime.now(UTC))
    start_at = parse_time(start, start_field) if start is not None else end_at - default_span
    if start_at >= end_at:
        raise invalid(start_field, f"must be before {end_field.split('.')[-1]}")
    return start_at, end_at
