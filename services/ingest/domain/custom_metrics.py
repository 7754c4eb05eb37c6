"""Custom metrics exported on the ingest service's /metrics, as POST /api/metrics feeds them.

A gauge sample sets its series, a counter sample adds its value, a histogram
sample is observed into the default Prometheus buckets. One metric name keeps
one type and one set of label names for the process lifetime (Prometheus
cannot represent anything else), and the number of distinct series (name +
label values) is capped so one careless client cannot blow up the scrape.

Posting is two-phase, so a refused or failed POST leaves nothing behind:
`admit()` checks type, label names and the cap and reserves the series
(synchronously, so concurrent requests cannot overshoot the cap); after Kafka
acknowledged the sample the handler calls `record()`, or `cancel()` if the
write failed. A reserved series is exported only once it has a value.

State is in memory: it restarts empty with the process, like any exporter's.
`collect()` may run on another thread (a sync /metrics handler), hence the lock.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from services.ingest.domain.metrics import MetricType

# prometheus_client's default buckets (seconds-oriented, but the de-facto default).
DEFAULT_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)
_HELP: Final = "Custom metric posted through POST /api/metrics"
SERIES_METRIC: Final = "chimera_custom_metrics_series"
REFUSED_METRIC: Final = "chimera_custom_metrics_refused"  # exported as ..._total


class CustomMetricError(Exception):
    """A sample the exporter cannot take."""


class SeriesLimitReached(CustomMetricError):
    def __init__(self, name: str, labels: dict[str, str], max_series: int) -> None:
        self.name = name
        self.labels = labels
        self.max_series = max_series
        super().__init__(f"custom metric series limit reached ({max_series} distinct series); "
                         f"the new series {name}{labels} is refused")


class MetricConflict(CustomMetricError):
    """The name is taken with another type or other label names."""

    def __init__(self, name: str, field: str, existing: str, requested: str) -> None:
        self.name = name
        self.field = field  # "type" or "labels"
        self.existing = existing
        self.requested = requested
        what = "type" if field == "type" else "label names"
        super().__init__(f"metric {name!r} already exists with {what} {existing}; got {requested}")


def family_name(name: str, kind: MetricType) -> str:
    """The exposition family: a counter `x_total` and a counter `x` are both exposed as `x_total`."""
    if kind == "counter" and name.endswith("_total"):
        return name[: -len("_total")]
    return name


def _exposed_names(family: str, kind: MetricType) -> tuple[str, ...]:
    """Sample names the family puts on /metrics; two families must not share one."""
    if kind == "counter":
        # The bare name too: OpenMetrics names the family `x` in its TYPE line.
        return (family, f"{family}_total", f"{family}_created")
    if kind == "histogram":
        return (family, f"{family}_bucket", f"{family}_sum", f"{family}_count", f"{family}_created")
    return (family,)


@dataclass
class _Series:
    label_values: tuple[str, ...]
    pending: int = 0  # admissions not yet recorded or cancelled
    recorded: bool = False
    value: float = 0.0  # gauge value or counter total
    bucket_counts: list[int] = field(default_factory=list)  # histogram, per bucket (not cumulative)
    total: float = 0.0  # histogram sum


@dataclass
class _Family:
    name: str
    kind: MetricType
    label_names: tuple[str, ...]
    series: dict[tuple[str, ...], _Series] = field(default_factory=dict)


@dataclass(frozen=True)
class Admission:
    """A reserved series, to be recorded once the sample is durable, or cancelled."""

    family: str
    label_values: tuple[str, ...]
    kind: MetricType


class CustomMetrics:
    def __init__(self, max_series: int) -> None:
        if max_series < 1:
            raise ValueError("max_series must be positive")
        self.max_series = max_series
        self._families: dict[str, _Family] = {}
        self._owner_of_exposed: dict[str, str] = {}
        self._series_count = 0
        self._refused: dict[str, int] = {"series_limit": 0, "conflict": 0}
        self._lock = threading.Lock()

    # --- posting ----------------------------------------------------------

    def admit(self, name: str, kind: MetricType, labels: dict[str, str]) -> Admission:
        """Check and reserve the series; raises SeriesLimitReached or MetricConflict (both counted)."""
        fam_name = family_name(name, kind)
        label_names = tuple(sorted(labels))
        values = tuple(labels[n] for n in label_names)
        with self._lock:
            family = self._families.get(fam_name)
            if family is None:
                clash = next((self._owner_of_exposed[e] for e in _exposed_names(fam_name, kind)
                              if e in self._owner_of_exposed), None)
                if clash is not None:
                    self._refused["conflict"] += 1
                    other = self._families[clash]
                    raise MetricConflict(name, "type", f"{other.kind} (as {other.name!r})", kind)
            else:
                if family.kind != kind:
                    self._refused["conflict"] += 1
                    raise MetricConflict(name, "type", family.kind, kind)
                if family.label_names != label_names:
                    self._refused["conflict"] += 1
                    raise MetricConflict(name, "labels", repr(list(family.label_names)), repr(list(label_names)))
            series = family.series.get(values) if family is not None else None
            if series is None and self._series_count >= self.max_series:
                self._refused["series_limit"] += 1
                raise SeriesLimitReached(name, labels, self.max_series)
            if family is None:
                family = _Family(fam_name, kind, label_names)
                self._families[fam_name] = family
                for exposed in _exposed_names(fam_name, kind):
                    self._owner_of_exposed[exposed] = fam_name
            if series is None:
                series = _Series(values, bucket_counts=[0] * (len(DEFAULT_BUCKETS) + 1) if kind == "histogram" else [])
                family.series[values] = series
                self._series_count += 1
            series.pending += 1
        return Admission(fam_name, values, kind)

    def record(self, admission: Admission, value: float) -> None:
        """Apply an admitted sample: gauge set, counter add, histogram observe."""
        with self._lock:
            series = self._families[admission.family].series[admission.label_values]
            series.pending -= 1
            series.recorded = True
            if admission.kind == "gauge":
                series.value = value
            elif admission.kind == "counter":
                series.value += value
            else:
                series.bucket_counts[bisect.bisect_left(DEFAULT_BUCKETS, value)] += 1
                series.total += value

    def cancel(self, admission: Admission) -> None:
        """Undo an admission whose sample was not written; frees a series nobody recorded."""
        with self._lock:
            family = self._families[admission.family]
            series = family.series[admission.label_values]
            series.pending -= 1
            if series.pending == 0 and not series.recorded:
                del family.series[admission.label_values]
                self._series_count -= 1
                if not family.series:
                    del self._families[admission.family]
                    for exposed in _exposed_names(family.name, family.kind):
                        self._owner_of_exposed.pop(exposed, None)

    # --- reading ----------------------------------------------------------

    @property
    def series_count(self) -> int:
        return self._series_count

    def refused(self, reason: str) -> int:
        return self._refused[reason]

    def collector(self) -> Collector:
        return _Collector(self)

    def families(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = [(f.name, f.kind, f.label_names,
                         [(s.label_values, s.value, list(s.bucket_counts), s.total)
                          for s in f.series.values() if s.recorded])
                        for f in self._families.values()]
            series_count = self._series_count
            refused = dict(self._refused)
        for name, kind, label_names, samples in snapshot:
            if not samples:
                continue
            yield _family(name, kind, list(label_names), samples)
        gauge = GaugeMetricFamily(SERIES_METRIC, "Distinct custom metric series held (including reserved ones)")
        gauge.add_metric([], series_count)
        yield gauge
        counter = CounterMetricFamily(REFUSED_METRIC, "Custom metric samples refused, by reason",
                                      labels=["reason"])
        for reason, count in sorted(refused.items()):
            counter.add_metric([reason], count)
        yield counter


def _family(name: str, kind: MetricType, label_names: list[str],
            samples: list[tuple[tuple[str, ...], float, list[int], float]]) -> Metric:
    if kind == "gauge":
        gauge = GaugeMetricFamily(name, _HELP, labels=label_names)
        for values, value, _, _ in samples:
            gauge.add_metric(list(values), value)
        return gauge
    if kind == "counter":
        counter = CounterMetricFamily(name, _HELP, labels=label_names)
        for values, value, _, _ in samples:
            counter.add_metric(list(values), value)
        return counter
    histogram = HistogramMetricFamily(name, _HELP, labels=label_names)
    bounds = [*(repr(b) for b in DEFAULT_BUCKETS), "+Inf"]
    for values, _, counts, total in samples:
        cumulative, buckets = 0, []
        for bound, count in zip(bounds, counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        histogram.add_metric(list(values), buckets, total)
    return histogram


class _Collector(Collector):
    def __init__(self, metrics: CustomMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()

    def describe(self) -> Iterator[Metric]:
        # Only the fixed families: custom names are not known at registration, and
        # describing them would make the registry reject later, unrelated names.
        yield GaugeMetricFamily(SERIES_METRIC, "")
        yield CounterMetricFamily(REFUSED_METRIC, "", labels=["reason"])
