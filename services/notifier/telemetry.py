"""The notifier's own Prometheus metrics.

Label values are bounded: channel types and outcomes are fixed lists, reasons
a fixed vocabulary (`reason_of`), never an error text or a channel name.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["NotifierTelemetry", "reason_of"]

_SECONDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def reason_of(*, ok: bool, status_code: int | None, refused: bool, retriable: bool) -> str:
    """A bounded reason: ok, refused, http_4xx, http_5xx, http_429, http_3xx, timeout_or_network, other."""
    if ok:
        return "ok"
    if refused:
        return "refused"
    if status_code is not None:
        if status_code == 429:
            return "http_429"
        if 300 <= status_code < 600:
            return f"http_{status_code // 100}xx"
        return "other"
    return "timeout_or_network" if retriable else "other"


class NotifierTelemetry:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records = Counter("chimera_notifier_records", "chimera.alerts records by outcome "
                               "(routed, unrouted: no channel hears it, dead_letter)", ["status"], registry=r)
        self.notifications = Counter(
            "chimera_notifier_notifications",
            "Notifications by channel type and outcome (sent; failed: dead after the last attempt or one not "
            "worth retrying) and reason", ["channel_type", "outcome", "reason"], registry=r)
        self.attempts = Counter("chimera_notifier_attempts", "Delivery attempts by channel type and reason",
                                ["channel_type", "reason"], registry=r)
        self.latency_s = Histogram(
            "chimera_notifier_delivery_latency_seconds",
            "From the notifier receiving an alert record to the notification about it delivered "
            "(group_wait included)", ["channel_type"], buckets=_SECONDS, registry=r)
        self.send_s = Histogram("chimera_notifier_send_seconds", "Time of one delivery attempt",
                                ["channel_type"], buckets=_SECONDS, registry=r)
        self.groups = Gauge("chimera_notifier_groups", "Notification groups this process holds", registry=r)
        self.muted = Counter("chimera_notifier_muted_alerts",
                             "Alerts left out of a notification, by why (silenced, inhibited)", ["why"], registry=r)
        self.flushes = Counter("chimera_notifier_flushes", "Group notifications made (stored to be sent)",
                               registry=r)
        self.rate_limited = Counter("chimera_notifier_rate_limited", "Notifications postponed by a channel's "
                                    "rate limit", registry=r)
        self.dead_letters = Counter("chimera_notifier_dead_letters", "Dead notifications published on "
                                    "chimera.notifications.deadletter", registry=r)
        self.store_failures = Counter("chimera_notifier_store_failures", "PostgreSQL or Kafka writes refused, "
                                      "each retried", registry=r)
        self.channels = Gauge("chimera_notifier_channels", "Enabled channels", registry=r)
        self.silences = Gauge("chimera_notifier_silences", "Silences in force", registry=r)
