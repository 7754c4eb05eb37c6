"""The metrics API's rules: what a sample's names and labels may be, and how miner reports merge. Pure.

The request bodies that apply these rules are `services.ingest.api.metric_bodies`;
the Kafka records the samples travel in are `shared.metric_envelopes`.

A rule answers None when the value is fine, else a `Refusal`: a stable code,
a message template and the values it names, which the HTTP layer turns into
its own validation error (so the code and the message are the same wherever
the rule is applied).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from shared.events import MINER_PATTERN

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

MAX_INT64: Final = 2**63 - 1

PERFORMANCE_FIELDS: Final = (
    "cpu_usage", "memory_usage", "disk_usage", "network_in_bytes", "network_out_bytes", "load_average",
)
# Columns of miner_metrics the API may write; the share counts belong to the aggregator.
MINER_REPORT_FIELDS: Final = ("reported_hashrate", "share_difficulty", "user_agent")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a value is refused: `template` is the message, with `{name}` fields filled from `values`."""

    code: str
    template: str
    values: dict[str, Any] | None = None


def label_refusal(labels: Mapping[str, str]) -> Refusal | None:
    if len(labels) > MAX_LABELS:
        return Refusal("too_many_labels", "at most {max} labels are allowed", {"max": MAX_LABELS})
    for name in labels:
        if len(name) > MAX_LABEL_NAME_CHARS:
            return Refusal("label_name", "label names are at most {max} characters", {"max": MAX_LABEL_NAME_CHARS})
        if _LABEL_NAME.fullmatch(name) is None:
            return Refusal("label_name", "label name '{name}' must match [a-zA-Z_][a-zA-Z0-9_]*", {"name": name})
        if name.startswith("__"):
            return Refusal(
                "label_name", "label name '{name}' is reserved: names starting with '__' belong to Prometheus",
                {"name": name},
            )
    return None


def metric_name_refusal(name: str) -> Refusal | None:
    if name.startswith(RESERVED_NAME_PREFIXES):
        return Refusal(
            "reserved_name", "metric names starting with {prefixes} are reserved for the service's own metrics",
            {"prefixes": ", ".join(repr(p) for p in RESERVED_NAME_PREFIXES)},
        )
    return None


def value_refusal(kind: str | None, value: float) -> Refusal | None:
    """`kind` is None when the sample's type was itself refused: nothing more to say then."""
    if kind == "counter" and value < 0:
        return Refusal("counter_negative", "a counter's value is an increment and must be >= 0")
    return None


def histogram_label_refusal(kind: str | None, labels: Mapping[str, str]) -> Refusal | None:
    if kind == "histogram" and "le" in labels:
        return Refusal("label_name", "label name 'le' is reserved for histogram buckets")
    return None


def measurement_refusal(fields: tuple[str, ...], values: Mapping[str, object]) -> Refusal | None:
    """A sample naming none of `fields` (all None) says nothing."""
    if all(values.get(field) is None for field in fields):
        return Refusal("no_measurement", "at least one of {fields} is required", {"fields": ", ".join(fields)})
    return None


class MinerReport(Protocol):
    """What a miner said about itself at `ts` (the envelope carrying it, as far as merging cares)."""

    @property
    def pool(self) -> str: ...
    @property
    def miner(self) -> str: ...
    @property
    def worker(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def reported_hashrate(self) -> float | None: ...
    @property
    def share_difficulty(self) -> float | None: ...
    @property
    def user_agent(self) -> str | None: ...


def minute_start(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def merge_miner_reports(reports: Iterable[MinerReport]) -> list[tuple[tuple[str, str, str, datetime], dict[str, Any]]]:
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
