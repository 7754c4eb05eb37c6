"""What one notification says: a group's alerts, ordered and truncated, as Alertmanager would (pure).

An `AlertView` is one `chimera.alerts` record (schema in docs/alerter.md) as
the messages need it; a `GroupMessage` is what goes to one channel for one
notification group. Every format (message_webhook, message_slack, ...) is
built from a `GroupMessage` alone, so a message can be rebuilt identically
from the delivery log after a crash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "FIRING",
    "RESOLVED",
    "TEST_ALERTNAME",
    "AlertView",
    "GroupMessage",
    "build_group_message",
    "common_annotations",
    "common_labels",
    "message_from_json",
    "message_to_json",
    "parse_time",
    "test_message",
]

FIRING: Final = "firing"
RESOLVED: Final = "resolved"
TEST_ALERTNAME: Final = "ChimeraTestNotification"
_FAR_FUTURE: Final = datetime.max.replace(tzinfo=UTC)


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time (an offset is required), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _time_field(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if parse_time(value) is None:
        raise ValueError(f"{name}: must be an RFC 3339 time with an offset, got {value!r}")
    return value  # type: ignore[return-value]  # parse_time accepted it, so it is a str


def _strings(record: Mapping[str, Any], name: str) -> dict[str, str]:
    value = record.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{name}: must be an object of strings")
    return dict(value)


@dataclass(frozen=True, slots=True)
class AlertView:
    fingerprint: str
    status: str  # firing or resolved
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str  # RFC 3339
    ends_at: str | None  # RFC 3339; None while firing
    generator_url: str = ""

    @property
    def firing(self) -> bool:
        return self.status == FIRING

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, generator_url: str = "") -> AlertView:
        """The alert a `chimera.alerts` value describes; ValueError naming the field when it breaks the schema.

        `alertname` and `severity` come from the record's `name` and `severity`
        when its labels lack them, so every message can name the alert."""
        if not isinstance(record, Mapping):
            raise ValueError("a chimera.alerts value must be a JSON object")
        fingerprint = record.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ValueError("fingerprint: must be a non-empty string")
        status = record.get("status")
        if status not in (FIRING, RESOLVED):
            raise ValueError(f"status: must be firing or resolved, got {status!r}")
        starts_at = _time_field(record, "starts_at")
        # A firing record's ends_at means nothing yet; a resolved one without it could not say when it ended.
        ends_at = _time_field(record, "ends_at") if status == RESOLVED else None
        labels = _strings(record, "labels")
        for label, field in (("alertname", "name"), ("severity", "severity")):
            value = record.get(field)
            if not labels.get(label) and isinstance(value, str) and value:
                labels[label] = value
        return cls(fingerprint, status, labels, _strings(record, "annotations"), starts_at, ends_at, generator_url)


@dataclass(frozen=True, slots=True)
class GroupMessage:
    receiver: str  # the channel's name
    group_key: str
    group_labels: Mapping[str, str]
    status: str  # firing when any alert of the group fires, even one left out
    alerts: tuple[AlertView, ...]  # the ones shown
    truncated: int = 0  # alerts left out
    external_url: str = ""


def message_to_json(msg: GroupMessage) -> dict[str, Any]:
    """The message as the delivery log keeps it: every format is rebuilt from this alone."""
    return {
        "receiver": msg.receiver, "group_key": msg.group_key, "group_labels": dict(msg.group_labels),
        "status": msg.status, "truncated": msg.truncated, "external_url": msg.external_url,
        "alerts": [{"fingerprint": a.fingerprint, "status": a.status, "labels": dict(a.labels),
                    "annotations": dict(a.annotations), "starts_at": a.starts_at, "ends_at": a.ends_at,
                    "generator_url": a.generator_url} for a in msg.alerts],
    }


def message_from_json(data: Mapping[str, Any]) -> GroupMessage:
    """The inverse of `message_to_json`."""
    alerts = tuple(AlertView(a["fingerprint"], a["status"], dict(a["labels"]), dict(a["annotations"]),
                             a["starts_at"], a.get("ends_at"), a.get("generator_url", "")) for a in data["alerts"])
    return GroupMessage(data["receiver"], data["group_key"], dict(data["group_labels"]), data["status"], alerts,
                        int(data.get("truncated", 0)), data.get("external_url", ""))


def _order(alert: AlertView) -> tuple[bool, datetime, str, str]:
    # Parsed, not compared as text: "…:00Z" and "…:00.5+00:00" do not sort as strings do.
    return (not alert.firing, parse_time(alert.starts_at) or _FAR_FUTURE, alert.starts_at, alert.fingerprint)


def build_group_message(receiver: str, group_key: str, group_labels: Mapping[str, str],
                        alerts: Iterable[AlertView], *, max_alerts: int, external_url: str = "") -> GroupMessage:
    """The group's alerts, firing first, then oldest first, cut to `max_alerts` (0: all of them).

    Firing first so that a cut never hides what is still wrong behind what was
    fixed. A cut alert is only counted (`truncated`): a channel that acts per
    alert (PagerDuty) must be given `max_alerts=0`, or its incidents for the
    left-out alerts would never resolve."""
    if max_alerts < 0:
        raise ValueError("max_alerts must be 0 (no limit) or more")
    ordered = sorted(alerts, key=_order)
    if not ordered:
        raise ValueError("a group message needs at least one alert")
    status = FIRING if ordered[0].firing else RESOLVED
    shown = ordered if max_alerts == 0 else ordered[:max_alerts]
    return GroupMessage(receiver, group_key, dict(group_labels), status, tuple(shown), len(ordered) - len(shown),
                        external_url)


def _common(maps: list[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        # As Alertmanager compares (`a.Labels[ln] != lv`): an absent name reads as the empty value.
        common = {name: value for name, value in common.items() if other.get(name, "") == value}
    return dict(sorted(common.items()))


def common_labels(alerts: Iterable[AlertView]) -> dict[str, str]:
    """The label pairs every alert has (Alertmanager's `commonLabels`), by name."""
    return _common([alert.labels for alert in alerts])


def common_annotations(alerts: Iterable[AlertView]) -> dict[str, str]:
    """The annotation pairs every alert has (Alertmanager's `commonAnnotations`), by name."""
    return _common([alert.annotations for alert in alerts])


def test_message(receiver: str, *, now: datetime | None = None, external_url: str = "") -> GroupMessage:
    """A one-alert firing message for the channels API's "send a test notification".

    The one message not made from a record, hence the clock when `now` is not
    given. Its fingerprint is the same for every test of a channel, so PagerDuty
    folds repeated tests into one incident (which someone resolves by hand)."""
    at = datetime.now(UTC) if now is None else now
    if at.tzinfo is None:
        raise ValueError("now must carry its time zone")
    starts_at = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    digest = hashlib.blake2b(receiver.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    alert = AlertView(
        fingerprint=f"test-{digest}",
        status=FIRING,
        labels={"alertname": TEST_ALERTNAME, "severity": "info", "channel": receiver},
        annotations={
            "summary": "Test notification from Chimera Monitor",
            "description": f"Sent from the channels API to check that channel {receiver} delivers. Nothing is wrong.",
        },
        starts_at=starts_at,
        ends_at=None,
    )
    return GroupMessage(receiver, f"test:{receiver}", {"alertname": TEST_ALERTNAME}, FIRING, (alert,), 0,
                        external_url)


# Its name starts with "test": pytest would collect it wherever a test module imports it.
test_message.__test__ = False  # type: ignore[attr-defined]
