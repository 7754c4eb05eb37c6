"""The alerter's own Prometheus metrics, and the app that serves them (`/metrics`, `/healthz`).

Label values are bounded: sources are the two input topics' base names,
statuses and severities fixed lists.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["AlerterTelemetry", "render"]

_SECONDS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class AlerterTelemetry:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records = Counter("chimera_alerter_records", "Input records by source topic and outcome",
                               ["topic", "status"], registry=r)
        self.observations = Counter("chimera_alerter_observations",
                                    "Rule readings sent to their groups (one per rule and series)", registry=r)
        self.evaluation_s = Histogram("chimera_alerter_evaluation_seconds",
                                      "Time to decode a record and evaluate the rules that select it",
                                      buckets=_SECONDS, registry=r)
        self.evaluation_lag_s = Histogram(
            "chimera_alerter_evaluation_lag_seconds",
            "From a record's own time (as_of_ms, ts) to the decision on its reading", buckets=_SECONDS, registry=r)
        self.transitions = Counter("chimera_alerter_transitions", "Alert transitions by status",
                                   ["status"], registry=r)
        self.alerts = Gauge("chimera_alerter_alerts", "Alerts this process holds, by state and severity",
                            ["state", "severity"], registry=r)
        self.rules = Gauge("chimera_alerter_rules", "Enabled rules in force", registry=r)
        self.ticks_s = Histogram("chimera_alerter_tick_seconds", "Time to move one partition's alerts in time",
                                 buckets=_SECONDS, registry=r)
        self.store_failures = Counter("chimera_alerter_store_failures",
                                      "Writes of transitions (PostgreSQL) or dead letters (Kafka) refused, each retried "
                                      "until it lands while the stream waits",
                                      registry=r)
        self.published = Gauge("chimera_alerter_published_total", "Alert records published on chimera.alerts",
                               registry=r)

    def set_alerts(self, counts: dict[tuple[str, str], int]) -> None:
        for state in ("pending", "firing"):
            for severity in ("info", "warning", "error", "critical"):
                self.alerts.labels(state, severity).set(counts.get((state, severity), 0))


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
