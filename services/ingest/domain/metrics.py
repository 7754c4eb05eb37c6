"""The metrics API's samples: what clients POST, and the envelopes that carry them through Kafka.

Three kinds travel on `pool.metrics`, told apart by `kind`:

- `metric`: a custom named sample (`name`, `value`, `type`, `labels`), keyed by `name`;
- `performance`: resource usage of a host/service, keyed by `host`;
- `miner`: what a miner's software reports about itself, keyed by `miner`.

Every envelope carries `id` (a uuid given when the API accepted the sample)
and `ts` (RFC 3339 UTC, milliseconds). The persister inserts on `id`, so a
re-delivered record is stored once; the alerter reads the same stream.
Envelopes ignore unknown fields, so producers may add fields later.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.ingest.domain.text import unstorable
from shared.events import MINER_PATTERN, NAME_PATTERN, Name, NonNegative, Positive, Timestamp

# Prometheus' data model (https://prometheus.io/docs/concepts/data_model/).
METRIC_NAME_PATTERN: Final = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
LABEL_NAME_PATTERN: Final = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_LABEL_NAME: Final = re.compile(LABEL_NAME_PATTERN)
MAX_METRIC_NAME_CHARS: Final = 128
MAX_LABELS: Final = 8
MAX_LABEL_NAME_CHARS: Final = 64
MAX_LABEL_VALUE_CHARS: Final = 128
# Names the service's own metrics use; a custom metric there could shadow them on /metrics.
RESERVED_NAME_PREFIXES: Final = ("chimera_", "ingest_", "process_", "python_")

# The event contract's miner rule itself (printable ASCII '!' to '~'), for path parameters
# and bodies alike: plain enough for OpenAPI tools that generate examples (schemathesis).
MINER_PARAM_PATTERN: Final = MINER_PATTERN
MinerId = Annotated[str, Field(min_length=1, max_length=128, pattern=MINER_PARAM_PATTERN)]

MetricType = Literal["gauge", "counter", "histogram"]
MAX_INT64: Final = 2**63 - 1


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise PydanticCustomError("too_many_labels", "at most {max} labels are allowed", {"max": MAX_LABELS})
    for name in labels:
        if len(name) > MAX_LABEL_NAME_CHARS:
            raise PydanticCustomError("label_name", "label names are at most {max} characters",
                                      {"max": MAX_LABEL_NAME_CHARS})
        if _LABEL_NAME.fullmatch(name) is None:
            raise PydanticCustomError(
                "label_name", "label name '{name}' must match [a-zA-Z_][a-zA-Z0-9_]*", {"name": name}
            )
        if name.startswith("__"):
            raise PydanticCustomError(
                "label_name", "label name '{name}' is reserved: names starting with '__' belong to Prometheus",
                {"name": name},
            )
    return labels


def _storable(value: str) -> str:
    # NUL (PostgreSQL cannot hold it) and lone surrogates (no UTF-8 encoder can write
    # them; JSON's "\ud800" decodes to one): refused here, or the sample would be
    # acknowledged and then fail to encode or store (domain/text.py).
    problem = unstorable(value)
    if problem is not None:
        raise PydanticCustomError("unstorable_text", problem)
    return value


Text = Annotated[str, AfterValidator(_storable)]

Labels = Annotated[
    # Text keys too: checked before _check_labels, whose messages quote the name.
    dict[Text, Annotated[Text, Field(max_length=MAX_LABEL_VALUE_CHARS)]],
    AfterValidator(_check_labels),
    Field(description=f"Label name -> value (at most {MAX_LABELS}); names match [a-zA-Z_][a-zA-Z0-9_]*."),
]


def _check_metric_name(name: str) -> str:
    if name.startswith(RESERVED_NAME_PREFIXES):
        raise PydanticCustomError(
            "reserved_name", "metric names starting with {prefixes} are reserved for the service's own metrics",
            {"prefixes": ", ".join(repr(p) for p in RESERVED_NAME_PREFIXES)},
        )
    return name


MetricName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_METRIC_NAME_CHARS, pattern=METRIC_NAME_PATTERN,
          description="Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]*"),
    AfterValidator(_check_metric_name),
]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Host = Annotated[str, Field(min_length=1, max_length=255, pattern=NAME_PATTERN)]
Service = Annotated[str, Field(max_length=128, pattern=r"^[A-Za-z0-9._-]*$")]
ByteCount = Annotated[int, Field(ge=0, le=MAX_INT64)]


class _Body(BaseModel):
    # Strict: a client sending "5" for a number has a bug that coercion would hide.
    # extra=forbid: a misspelt field (or a share count on the miner endpoint) is an error, not silence.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class MetricIn(_Body):
    """POST /api/metrics."""

    name: MetricName
    # Declared before `value` so value's validator can see it.
    type: MetricType = Field(default="gauge", description="gauge: set; counter: add value (>= 0); histogram: observe value")
    value: Finite
    labels: Labels = Field(default_factory=dict)
    timestamp: Timestamp | None = Field(default=None, description="Default: when the API receives it")

    @field_validator("value")
    @classmethod
    def _counter_increments(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("type") == "counter" and value < 0:
            raise PydanticCustomError("counter_negative", "a counter's value is an increment and must be >= 0")
        return value

    @field_validator("labels")
    @classmethod
    def _histogram_le(cls, labels: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if info.data.get("type") == "histogram" and "le" in labels:
            raise PydanticCustomError("label_name", "label name 'le' is reserved for histogram buckets")
        return labels


class PerformanceIn(_Body):
    """POST /api/metrics/performance. Usages are percentages (a multi-core CPU may exceed 100)."""

    host: Host
    service: Service = ""
    cpu_usage: NonNegative | None = None
    memory_usage: NonNegative | None = None
    disk_usage: NonNegative | None = None
    network_in_bytes: ByteCount | None = None
    network_out_bytes: ByteCount | None = None
    load_average: NonNegative | None = None
    labels: Labels = Field(default_factory=dict)
    timestamp: Timestamp | None = None

    @model_validator(mode="after")
    def _some_measurement(self) -> PerformanceIn:
        if all(getattr(self, f) is None for f in PERFORMANCE_FIELDS):
            raise PydanticCustomError(
                "no_measurement", "at least one of {fields} is required", {"fields": ", ".join(PERFORMANCE_FIELDS)}
            )
        return self


PERFORMANCE_FIELDS: Final = (
    "cpu_usage", "memory_usage", "disk_usage", "network_in_bytes", "network_out_bytes", "load_average",
)
# Columns of miner_metrics the API may write; the share counts belong to the aggregator.
MINER_REPORT_FIELDS: Final = ("reported_hashrate", "share_difficulty", "user_agent")


class MinerReportIn(_Body):
    """POST /api/metrics/miner: what a miner's software says about itself, for one minute row."""

    miner: MinerId
    worker: Name = "default"
    pool: Name = "main"
    reported_hashrate: NonNegative | None = Field(default=None, description="Hashes per second, as the miner reports it")
    share_difficulty: Positive | None = Field(default=None, description="Current vardiff target")
    user_agent: Annotated[Text, Field(max_length=256)] | None = None
    timestamp: Timestamp | None = Field(default=None, description="Stored in the row of the minute it falls in")

    @model_validator(mode="after")
    def _some_report(self) -> MinerReportIn:
        if all(getattr(self, f) is None for f in MINER_REPORT_FIELDS):
            raise PydanticCustomError(
                "no_measurement", "at least one of {fields} is required", {"fields": ", ".join(MINER_REPORT_FIELDS)}
            )
        return self


# --- envelopes ---------------------------------------------------------------


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    ts: Timestamp


class MetricEnvelope(_Envelope):
    kind: Literal["metric"] = "metric"
    name: str
    type: MetricType
    value: float
    labels: dict[str, str]


class PerformanceEnvelope(_Envelope):
    kind: Literal["performance"] = "performance"
    host: str
    service: str
    cpu_usage: float | None = None
    memory_usage: float | None = None
    disk_usage: float | None = None
    network_in_bytes: int | None = None
    network_out_bytes: int | None = None
    load_average: float | None = None
    labels: dict[str, str]


class MinerReportEnvelope(_Envelope):
    kind: Literal["miner"] = "miner"
    pool: str
    miner: str
    worker: str
    reported_hashrate: float | None = None
    share_difficulty: float | None = None
    user_agent: str | None = None


Envelope = Annotated[MetricEnvelope | PerformanceEnvelope | MinerReportEnvelope, Field(discriminator="kind")]
_ENVELOPE: Final[TypeAdapter[Envelope]] = TypeAdapter(Envelope)


def metric_envelope(body: MetricIn, now: datetime) -> MetricEnvelope:
    return MetricEnvelope(id=uuid.uuid4(), ts=body.timestamp or now, name=body.name, type=body.type,
                          value=body.value, labels=body.labels)


def performance_envelope(body: PerformanceIn, now: datetime) -> PerformanceEnvelope:
    fields = body.model_dump(exclude={"timestamp"})
    return PerformanceEnvelope(id=uuid.uuid4(), ts=body.timestamp or now, **fields)


def miner_envelope(body: MinerReportIn, now: datetime) -> MinerReportEnvelope:
    fields = body.model_dump(exclude={"timestamp"})
    return MinerReportEnvelope(id=uuid.uuid4(), ts=body.timestamp or now, **fields)


def record_key(envelope: MetricEnvelope | PerformanceEnvelope | MinerReportEnvelope) -> bytes:
    """Kafka key: one metric's (host's, miner's) samples stay ordered in one partition."""
    if isinstance(envelope, MetricEnvelope):
        return envelope.name.encode()
    if isinstance(envelope, PerformanceEnvelope):
        return envelope.host.encode()
    return envelope.miner.encode()


def encode_envelope(envelope: MetricEnvelope | PerformanceEnvelope | MinerReportEnvelope) -> bytes:
    return orjson.dumps(envelope.model_dump(mode="json"))


# The API enforced "not more than 5 minutes ahead" when it accepted the sample; a
# consumer whose clock lags (or that reads much later) must not refuse it for that.
_NO_FUTURE_BOUND: Final = {"now_ms": 2**62}


def decode_envelope(raw: bytes) -> MetricEnvelope | PerformanceEnvelope | MinerReportEnvelope:
    """Raises ValueError (pydantic's ValidationError is one) for a record that is not an envelope."""
    return _ENVELOPE.validate_json(raw, context=_NO_FUTURE_BOUND)


def minute_start(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def merge_miner_reports(reports: Iterable[MinerReportEnvelope]) -> list[tuple[tuple[str, str, str, datetime], dict[str, Any]]]:
    """One upsert per miner_metrics row: later reports' non-null fields win, in stream order.

    A multi-row upsert may not touch one row twice, and two posts in one
    minute (hashrate, then user agent) must both count.
    """
    merged: dict[tuple[str, str, str, datetime], dict[str, Any]] = {}
    for report in reports:
        key = (report.pool, report.miner, report.worker, minute_start(report.ts))
        row = merged.setdefault(key, dict.fromkeys(MINER_REPORT_FIELDS))
        for field in MINER_REPORT_FIELDS:
            value = getattr(report, field)
            if value is not None:
                row[field] = value
    return list(merged.items())
