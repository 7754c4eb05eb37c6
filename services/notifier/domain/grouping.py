"""Notification groups and their timing, as Alertmanager's aggregation groups (pure).

Per channel and group (its `group_by` values):
- a new group waits `group_wait` before its first notification, so alerts
  that arrive together go out in one message;
- then it is looked at every `group_interval`: it notifies when what people
  were told differs from what holds (an alert new, resolved, or fired anew);
- unchanged, a firing group is notified again after `repeat_interval`;
- muted alerts (silenced, inhibited) are left out; one still firing when it
  is no longer muted is new to people, so it goes out;
- a resolved alert is told (if the channel `send_resolved`) only when people
  were told it fired, then it leaves the group; an empty group ends.

Each notification carries `sequence`, the group's count of notifications:
(group key, sequence) is the idempotency key the delivery log keeps, so a
flush replayed after a crash is recognised as already delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .routing import Route

__all__ = ["Flush", "GroupedAlert", "NotificationGroup", "add", "flush"]


@dataclass(frozen=True, slots=True)
class GroupedAlert:
    fingerprint: str
    status: str  # firing or resolved
    starts_at: str  # with the fingerprint, the alert instance
    labels: Mapping[str, str]
    record: Mapping[str, Any]  # the chimera.alerts value, for the message
    received_ms: int = 0  # when the notifier got this record: delivery latency is measured from it


@dataclass(slots=True)
class NotificationGroup:
    key: str
    channel_id: int
    labels: dict[str, str]
    next_flush_ms: int
    alerts: dict[str, GroupedAlert] = field(default_factory=dict)
    told: dict[str, str] = field(default_factory=dict)  # fingerprint -> starts_at of the firing people heard of
    last_sent_ms: int | None = None
    sequence: int = 0

    @classmethod
    def new(cls, key: str, route: Route, labels: Mapping[str, str], now_ms: int) -> NotificationGroup:
        return cls(key, route.channel_id, dict(labels), now_ms + route.group_wait_ms)

    @property
    def empty(self) -> bool:
        return not self.alerts and not self.told


@dataclass(frozen=True, slots=True)
class Flush:
    group_key: str
    sequence: int
    firing: tuple[GroupedAlert, ...]
    resolved: tuple[GroupedAlert, ...]
    # When the notifier received the earliest record this notification tells of anew
    # (None for a repeat of what people already heard).
    changed_since_ms: int | None = None

    @property
    def idempotency_key(self) -> str:
        return f"{self.group_key}:{self.sequence}"

    @property
    def alerts(self) -> tuple[GroupedAlert, ...]:
        return self.firing + self.resolved


def add(group: NotificationGroup, alert: GroupedAlert) -> bool:
    """Take the alert's latest state; False for a repeat or an older instance (dropped)."""
    known = group.alerts.get(alert.fingerprint)
    if known is not None:
        if (known.starts_at, known.status) == (alert.starts_at, alert.status):
            return False
        if known.starts_at > alert.starts_at or (known.starts_at == alert.starts_at and known.status == "resolved"):
            return False  # an older instance, or a firing record after its own resolution
    group.alerts[alert.fingerprint] = alert
    return True


def flush(group: NotificationGroup, route: Route, now_ms: int,
          muted: Callable[[Mapping[str, str]], bool]) -> Flush | None:
    """The notification due now, if any (the group's clock moves on either way)."""
    if now_ms < group.next_flush_ms:
        return None
    group.next_flush_ms = now_ms + route.group_interval_ms
    firing = tuple(sorted((a for a in group.alerts.values() if a.status == "firing" and not muted(a.labels)),
                          key=lambda a: (a.starts_at, a.fingerprint)))
    told_fired = [a for a in group.alerts.values()
                  if a.status == "resolved" and group.told.get(a.fingerprint) == a.starts_at]
    resolved = tuple(sorted(told_fired, key=lambda a: (a.starts_at, a.fingerprint))) if route.send_resolved else ()
    news = [a for a in firing if group.told.get(a.fingerprint) != a.starts_at] + told_fired
    changed = bool(news)
    repeat = (bool(firing) and group.last_sent_ms is not None
              and now_ms - group.last_sent_ms >= route.repeat_interval_ms)
    # Resolved alerts leave the group, told or not; people were told what they needed.
    for alert in [a for a in group.alerts.values() if a.status == "resolved"]:
        del group.alerts[alert.fingerprint]
        group.told.pop(alert.fingerprint, None)
    if not (changed or repeat) or not (firing or resolved):
        return None
    for alert in firing:
        group.told[alert.fingerprint] = alert.starts_at
    group.sequence += 1
    group.last_sent_ms = now_ms
    return Flush(group.key, group.sequence, firing, resolved,
                 min((a.received_ms for a in news), default=None))
