"""Custom metrics on the ingest service's /metrics: the domain's ledger, rendered as Prometheus families.

`CustomMetrics` is the ledger (`services.ingest.domain.custom_metrics`: series,
owners, quotas, expiry) plus the `prometheus_client` collector that exports
it, so the container holds one object that the API posts to and the registry
collects from. Each collection works on one `snapshot()`, so a scrape shows
the series and their counts as they were at one instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from services.ingest.domain.custom_metrics import DEFAULT_BUCKETS, CustomMetricsLedger, FamilyReading

_HELP: Final = "Custom metric posted through POST /api/metrics"
SERIES_METRIC: Final = "chimera_custom_metrics_series"
REFUSED_METRIC: Final = "chimera_custom_metrics_refused"  # exported as ..._total
REFUSED_LABELS: Final = ("key_id", "reason")


class CustomMetrics(CustomMetricsLedger):
    """The ledger, exported: register `collector()` with the service's registry."""

    def collector(self) -> Collector:
        return _Collector(self)

    def families(self) -> Iterator[Metric]:
        snapshot = self.snapshot()
        for family in snapshot.families:
            if not family.series:
                continue
            yield _family(family)
        gauge = GaugeMetricFamily(SERIES_METRIC, "Distinct custom metric series held (including reserved ones)")
        gauge.add_metric([], snapshot.series_count)
        yield gauge
        counter = CounterMetricFamily(REFUSED_METRIC, "Custom metric samples refused, by API key and reason",
                                      labels=list(REFUSED_LABELS))
        for (key_id, reason), count in sorted(snapshot.refused.items()):
            counter.add_metric([key_id, reason], count)
        yield counter


def _family(family: FamilyReading) -> Metric:
    label_names = list(family.label_names)
    if family.kind == "gauge":
        gauge = GaugeMetricFamily(family.name, _HELP, labels=label_names)
        for series in family.series:
            gauge.add_metric(list(series.label_values), series.value)
        return gauge
    if family.kind == "counter":
        counter = CounterMetricFamily(family.name, _HELP, labels=label_names)
        for series in family.series:
            counter.add_metric(list(series.label_values), series.value)
        return counter
    histogram = HistogramMetricFamily(family.name, _HELP, labels=label_names)
    bounds = [*(repr(b) for b in DEFAULT_BUCKETS), "+Inf"]
    for series in family.series:
        cumulative, buckets = 0, []
        for bound, count in zip(bounds, series.bucket_counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        histogram.add_metric(list(series.label_values), buckets, series.total)
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
        yield CounterMetricFamily(REFUSED_METRIC, "", labels=list(REFUSED_LABELS))
