"""The records on `pool.metrics`: the envelopes that carry the metrics API's samples through Kafka.

Three kinds travel on the topic, told apart by `kind`:

- `metric`: a custom named sample (`name`, `value`, `type`, `labels`), keyed by `name`;
- `performance`: resource usage of a host/service, keyed by `host`;
- `miner`: what a miner's software reports about itself, keyed by `miner`.

Every envelope carries `id` (a uuid given when the API accepted the sample)
and `ts` (RFC 3339 UTC, milliseconds). The persister inserts on `id`, so a
re-delivered record is stored once; the alerter reads the same stream
(two services: hence here, in shared/).
Envelopes ignore unknown fields, so producers may add fields later.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.events import Timestamp

MetricType = Literal["gauge", "counter", "histogram"]


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
