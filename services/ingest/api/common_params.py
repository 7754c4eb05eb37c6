"""Bits the metrics, stats, dashboards and query routers share: the container, time-range parameters, text bodies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from fastapi import Request
from starlette.convertors import Convertor, register_url_convertor

from services.ingest.domain.metrics import MINER_PARAM_PATTERN
from shared.http.bodies import ErrorOut, Text, error_responses, invalid

__all__ = ["MINER_PARAM_PATTERN", "ErrorOut", "Text", "container", "error_responses", "invalid", "parse_time",
           "time_range"]


class _AnyText(Convertor[str]):
    """A path parameter that may hold "/" and any other character: a miner name may (section 1
    of the contract), and its own pattern, not the router, is what judges it (422 naming the field).
    Starlette's `path` convertor stops at a newline, which would turn a look-alike into a 404."""

    regex = r"[\s\S]*"  # empty too: the parameter's min_length answers 422 naming the field

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


# Routes write `{miner:any}`; registered once, when the routers are imported.
register_url_convertor("any", _AnyText())

if TYPE_CHECKING:  # app.py imports these routers; importing it back at run time would be circular
    from services.ingest.bootstrap import Container

_RFC3339: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII)
_EPOCH_MS: Final = re.compile(r"-?\d{1,15}", re.ASCII)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
# Time parameters are bounded: nothing stored is older than 2009 or more than minutes
# ahead, so the range hides no data, and its margins (1969 years below, a year above)
# keep all arithmetic on an accepted time (a default `from` of `to` - a span, a step
# floored to its day) inside what datetime, asyncpg and PostgreSQL can represent.
# Year 1 and year 9999 themselves overflowed: `to` - 1 hour in year 1 was a 500.
MIN_TIME: Final = _EPOCH
MAX_TIME: Final = datetime(9999, 1, 1, tzinfo=UTC)
_MAX_EPOCH_MS: Final = (MAX_TIME - _EPOCH) // _ONE_MS
_TIME_FORMS: Final = "RFC 3339 with offset (e.g. 2026-01-01T00:00:00Z) or integer epoch milliseconds"
_TIME_RANGE: Final = (f"from {MIN_TIME:%Y-%m-%dT%H:%M:%SZ} (epoch ms 0) "
                      f"to {MAX_TIME:%Y-%m-%dT%H:%M:%SZ} (epoch ms {_MAX_EPOCH_MS}), inclusive")
TIME_PARAM_DOC: Final = f"{_TIME_FORMS}, {_TIME_RANGE}"


def container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


def parse_time(value: str, field: str) -> datetime:
    """A time parameter as UTC, between MIN_TIME and MAX_TIME; else a 422 naming `field`."""
    if _EPOCH_MS.fullmatch(value):
        ms = int(value)
        # Checked as an integer, before any datetime exists that could overflow.
        if not 0 <= ms <= _MAX_EPOCH_MS:
            raise invalid(field, f"out of range: must be {_TIME_RANGE}")
        return _EPOCH + _ONE_MS * ms
    if _RFC3339.fullmatch(value) is None:
        raise invalid(field, f"expected {_TIME_FORMS}")
    try:
        parsed = datetime.fromisoformat(value.upper())  # 3.11 rejects lowercase t/z
    except ValueError:  # month 13, hour 24, a leap second, an offset of 24 hours or more
        raise invalid(field, f"not a valid date and time: expected {_TIME_FORMS}") from None
    # Compared while still in its own offset: astimezone() itself overflows next to year 1 or 9999.
    if not MIN_TIME <= parsed <= MAX_TIME:
        raise invalid(field, f"out of range: must be {_TIME_RANGE}")
    return parsed.astimezone(UTC)


def time_range(start: str | None, end: str | None, *, default_span: timedelta,
               default_end: datetime | None = None, start_field: str = "query.from",
               end_field: str = "query.to") -> tuple[datetime, datetime]:
    """[start, end): end defaults to `default_end` (now), start to end - default_span.

    Safe for any accepted `end`: parse_time keeps it at or after MIN_TIME, far above year 1."""
    end_at = parse_time(end, end_field) if end is not None else (default_end or datetime.now(UTC))
    start_at = parse_time(start, start_field) if start is not None else end_at - default_span
    if start_at >= end_at:
        raise invalid(start_field, f"must be before {end_field.split('.')[-1]}")
    return start_at, end_at
