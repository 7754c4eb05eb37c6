"""The PagerDuty channel's bodies: Events API v2 events, one per alert (pure).

A firing alert triggers, a resolved one resolves, under the alert's
fingerprint as `dedup_key`: PagerDuty then keeps one incident per alert,
and a trigger repeated (a repeat notification, a delivery retried) adds
nothing to it. PagerDuty acts per alert, so its channel must get every alert
of a group: an alert cut from a message would leave its incident open.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from .message_group import AlertView, GroupMessage
from .message_text import clip, iso_time, label_pairs, one_line, safe_url

__all__ = ["PAGERDUTY_SEVERITY", "SOURCE_LABELS", "dedup_key", "pagerduty_events"]

SUMMARY_LIMIT: Final = 1024
DEDUP_KEY_LIMIT: Final = 255
# Chimera's severities are PagerDuty's four; anything else is "error", as Alertmanager's default.
PAGERDUTY_SEVERITY: Final = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}
DEFAULT_SEVERITY: Final = "error"
# What the alert is about, most specific first.
SOURCE_LABELS: Final = ("instance", "host", "worker", "miner", "pool")
DEFAULT_SOURCE: Final = "chimera"
CLIENT: Final = "Chimera Monitor"


def dedup_key(fingerprint: str) -> str:
    """The fingerprint; hashed only if longer than PagerDuty takes (the alerter's are 16 hex digits)."""
    if len(fingerprint) <= DEDUP_KEY_LIMIT:
        return fingerprint
    return hashlib.sha256(fingerprint.encode("utf-8", "surrogatepass")).hexdigest()


def _source(alert: AlertView) -> str:
    for name in SOURCE_LABELS:
        if value := one_line(alert.labels.get(name, "")):
            return clip(value, 255)
    return DEFAULT_SOURCE


def _summary(alert: AlertView) -> str:
    detail = alert.annotations.get("summary") or label_pairs(alert.labels, skip=("alertname", "severity"))
    name = alert.name or "alert"
    return clip(one_line(f"{name}: {detail}" if detail else name), SUMMARY_LIMIT)


def _trigger(alert: AlertView, msg: GroupMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "summary": _summary(alert),
        "source": _source(alert),
        "severity": PAGERDUTY_SEVERITY.get(alert.severity.strip().lower(), DEFAULT_SEVERITY),
        "custom_details": {"labels": dict(sorted(alert.labels.items())),
                           "annotations": dict(sorted(alert.annotations.items()))},
    }
    if timestamp := iso_time(alert.starts_at):
        payload["timestamp"] = timestamp
    if alert.name:
        payload["class"] = clip(one_line(alert.name), 255)
    event: dict[str, Any] = {"payload": payload, "client": CLIENT}
    if client_url := safe_url(msg.external_url):
        event["client_url"] = client_url
    if source_url := safe_url(alert.generator_url):
        event["links"] = [{"href": source_url, "text": "Source"}]
    return event


def pagerduty_events(msg: GroupMessage, routing_key: str) -> list[dict[str, Any]]:
    if not routing_key:
        raise ValueError("a PagerDuty event needs the integration's routing key")
    events = []
    for alert in msg.alerts:
        event: dict[str, Any] = {
            "routing_key": routing_key,
            "event_action": "trigger" if alert.firing else "resolve",
            "dedup_key": dedup_key(alert.fingerprint),
        }
        if alert.firing:
            event.update(_trigger(alert, msg))
        events.append(event)
    return events
