"""What clients POST to the metrics API, and the Kafka envelopes the samples become.

The rules themselves (names, labels, reserved prefixes) are the domain's
(`services.ingest.domain.metrics`); these models apply them while FastAPI
validates a body, so a refusal is a 422 naming the field. The models' names
are the schemas' names in the OpenAPI document.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.ingest.api.common_params import Text
from services.ingest.domain.metrics import (
    MAX_INT64,
    MAX_LABEL_VALUE_CHARS,
    MAX_LABELS,
    MAX_METRIC_NAME_CHARS,
    METRIC_NAME_PATTERN,
    MINER_PARAM_PATTERN,
    MINER_REPORT_FIELDS,
    PERFORMANCE_FIELDS,
    Refusal,
    histogram_label_refusal,
    label_refusal,
    measurement_refusal,
    metric_name_refusal,
    value_refusal,
)
from shared.events import NAME_PATTERN, Name, NonNegative, Positive, Timestamp
from shared.metric_envelopes import MetricEnvelope, MetricType, MinerReportEnvelope, PerformanceEnvelope


def _refuse(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise PydanticCustomError(refusal.code, refusal.template, refusal.values)


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    _refuse(label_refusal(labels))
    return labels


def _check_metric_name(name: str) -> str:
    _refuse(metric_name_refusal(name))
    return name


MinerId = Annotated[str, Field(min_length=1, max_length=128, pattern=MINER_PARAM_PATTERN)]

Labels = Annotated[
    # Text keys too: checked before _check_labels, whose messages quote the name.
    dict[Text, Annotated[Text, Field(max_length=MAX_LABEL_VALUE_CHARS)]],
    AfterValidator(_check_labels),
    Field(description=f"Label name -> value (at most {MAX_LABELS}); names match [a-zA-Z_][a-zA-Z0-9_]*."),
]

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
        _refuse(value_refusal(info.data.get("type"), value))
        return value

    @field_validator("labels")
    @classmethod
    def _histogram_le(cls, labels: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        _refuse(histogram_label_refusal(info.data.get("type"), labels))
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
        _refuse(measurement_refusal(PERFORMANCE_FIELDS, {f: getattr(self, f) for f in PERFORMANCE_FIELDS}))
        return self


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
        _refuse(measurement_refusal(MINER_REPORT_FIELDS, {f: getattr(self, f) for f in MINER_REPORT_FIELDS}))
        return self


# --- the envelopes they become -----------------------------------------------


def metric_envelope(body: MetricIn, now: datetime) -> MetricEnvelope:
    return MetricEnvelope(id=uuid.uuid4(), ts=body.timestamp or now, name=body.name, type=body.type,
                          value=body.value, labels=body.labels)


def performance_envelope(body: PerformanceIn, now: datetime) -> PerformanceEnvelope:
    fields = body.model_dump(exclude={"timestamp"})
    return PerformanceEnvelope(id=uuid.uuid4(), ts=body.timestamp or now, **fields)


def miner_envelope(body: MinerReportIn, now: datetime) -> MinerReportEnvelope:
    fields = body.model_dump(exclude={"timestamp"})
    return MinerReportEnvelope(id=uuid.uuid4(), ts=body.timestamp or now, **fields)
