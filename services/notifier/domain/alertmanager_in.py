"""Alertmanager's webhook payload (version 4) as `chimera.alerts` records (pure).

An Alertmanager pointed at `POST /api/alertmanager/webhook` hands its alerts
to the notifier, which then routes, silences, groups and delivers them like
the alerter's own. Each alert becomes one record in the schema of
docs/alerter.md (the keys of `alert_store.alert_value`), plus `generator_url`
and `source: "alertmanager"`:

- fingerprint: `am-` + Alertmanager's own (so it never meets an alerter
  fingerprint), or, when absent, `am-` + the label set's key;
- name: the `alertname` label (required: every message names its alert);
- severity: the `severity` label when it is one of ours, else `warning`;
- status and times as Alertmanager says; a resolved alert without an end
  time ended `now`. `fired_at` is the start: Alertmanager does not say when
  an alert began firing.

Everything is bounded (alerts per payload, labels per alert, lengths), and
a breach names the field (`alerts[3].labels.alertname`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from shared.labels import label_set_key
from shared.text import unstorable

from .routing import SEVERITIES

__all__ = [
    "MAX_ALERTS",
    "MAX_FIELDS",
    "MAX_NAME_CHARS",
    "MAX_NOTE_CHARS",
    "MAX_URL_CHARS",
    "MAX_VALUE_CHARS",
    "SOURCE",
    "PayloadError",
    "Problem",
    "records_from_webhook",
]

SOURCE: Final = "alertmanager"
FINGERPRINT_PREFIX: Final = "am-"
DEFAULT_SEVERITY: Final = "warning"
MAX_ALERTS: Final = 1_000
MAX_FIELDS: Final = 64  # labels, or annotations, per alert
MAX_NAME_CHARS: Final = 128  # a label or annotation name
MAX_VALUE_CHARS: Final = 1_024  # a label value
MAX_NOTE_CHARS: Final = 8_192  # an annotation value
MAX_URL_CHARS: Final = 2_048
MAX_PROBLEMS: Final = 20  # reported at most: enough to fix a payload, bounded for a hostile one
_FINGERPRINT: Final = re.compile(r"[0-9A-Za-z._:-]{1,128}")
_RFC3339: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})")


@dataclass(frozen=True, slots=True)
class Problem:
    field: str  # alerts[3].labels.alertname
    message: str


class PayloadError(ValueError):
    """The payload cannot be taken; `problems` name every field at fault (up to MAX_PROBLEMS)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = tuple(problems)


class _Problems:
    def __init__(self) -> None:
        self.found: list[Problem] = []
        self.count = 0  # every one, kept or not

    def add(self, field: str, message: str) -> None:
        self.count += 1
        if len(self.found) < MAX_PROBLEMS:
            self.found.append(Problem(field, message))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(value: Any, field: str, problems: _Problems, *, required: bool) -> datetime | None:
    """The time, or None for an absent one (missing, empty, or Go's zero time: year 1)."""
    if value is None or value == "" or (isinstance(value, str) and value.startswith("0001-")):
        if required:
            problems.add(field, "required: an RFC 3339 time with an offset")
        return None
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        problems.add(field, "must be an RFC 3339 time with an offset (2024-05-01T12:00:00Z)")
        return None
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        problems.add(field, f"{value!r} is not a time")
        return None


def _strings(value: Any, field: str, problems: _Problems, *, max_value_chars: int) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(field, "must be an object of strings")
        return {}
    if len(value) > MAX_FIELDS:
        problems.add(field, f"at most {MAX_FIELDS} entries")
        return {}
    out: dict[str, str] = {}
    for name, text in value.items():
        where = f"{field}.{name}"
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS or unstorable(name) is not None:
            problems.add(field, f"names are 1 to {MAX_NAME_CHARS} characters, no NUL or lone surrogate")
        elif not isinstance(text, str):
            problems.add(where, "must be a string")
        elif len(text) > max_value_chars:
            problems.add(where, f"at most {max_value_chars} characters")
        elif (problem := unstorable(text)) is not None:
            problems.add(where, problem)
        else:
            out[name] = text
    return out


def _record(alert: Any, where: str, now: datetime, problems: _Problems) -> dict[str, Any] | None:
    if not isinstance(alert, Mapping):
        problems.add(where, "must be an object")
        return None
    before = problems.count
    status = alert.get("status")
    if status not in ("firing", "resolved"):
        problems.add(f"{where}.status", "must be firing or resolved")
    labels = _strings(alert.get("labels"), f"{where}.labels", problems, max_value_chars=MAX_VALUE_CHARS)
    annotations = _strings(alert.get("annotations"), f"{where}.annotations", problems,
                           max_value_chars=MAX_NOTE_CHARS)
    raw_labels = alert.get("labels")
    raw_name = raw_labels.get("alertname") if isinstance(raw_labels, Mapping) else None
    # Labels that are no object, or a name that is no string, were reported by _strings already.
    missing = raw_name is None or (isinstance(raw_name, str) and not raw_name.strip())
    if raw_labels is None or (isinstance(raw_labels, Mapping) and missing):
        problems.add(f"{where}.labels.alertname", "required: the alert's name")
    starts_at = _time(alert.get("startsAt"), f"{where}.startsAt", problems, required=True)
    ends_at = _time(alert.get("endsAt"), f"{where}.endsAt", problems, required=False)
    generator_url = alert.get("generatorURL") or ""
    if not isinstance(generator_url, str) or len(generator_url) > MAX_URL_CHARS \
            or unstorable(generator_url) is not None:
        problems.add(f"{where}.generatorURL", f"a string of at most {MAX_URL_CHARS} characters")
    fingerprint = alert.get("fingerprint") or ""
    if not isinstance(fingerprint, str) or (fingerprint and _FINGERPRINT.fullmatch(fingerprint) is None):
        problems.add(f"{where}.fingerprint", "1 to 128 of A-Z a-z 0-9 . _ : - (Alertmanager's is hex)")
    if problems.count > before or starts_at is None:
        return None
    firing = status == "firing"
    if not firing:
        ends_at = ends_at or max(now.astimezone(UTC), starts_at)
        if ends_at < starts_at:
            problems.add(f"{where}.endsAt", "before startsAt")
            return None
    severity = labels.get("severity", "")
    return {
        "fingerprint": FINGERPRINT_PREFIX + (fingerprint or label_set_key(SOURCE, labels)),
        "status": "firing" if firing else "resolved",
        "starts_at": _iso(starts_at),
        "ends_at": None if firing or ends_at is None else _iso(ends_at),
        "fired_at": _iso(starts_at) if firing else None,
        "labels": labels,
        "annotations": annotations,
        "severity": severity if severity in SEVERITIES else DEFAULT_SEVERITY,
        "name": labels["alertname"],
        "value": None,
        "threshold": None,
        "rule_id": None,
        "alert_id": None,
        "reason": None if firing else "resolved in Alertmanager",
        "generator_url": generator_url,
        "source": SOURCE,
    }


def records_from_webhook(payload: Any, *, now: datetime) -> list[dict[str, Any]]:
    """One `chimera.alerts` value per alert of the payload, in its order; PayloadError when any is wrong
    (then none is taken: a half-taken payload would be half retried by Alertmanager)."""
    if now.tzinfo is None:
        raise ValueError("now must carry its time zone")
    problems = _Problems()
    if not isinstance(payload, Mapping):
        raise PayloadError([Problem("body", "must be a JSON object (Alertmanager's webhook payload)")])
    version = payload.get("version")
    if version is not None and version != "4":
        problems.add("version", 'must be "4" (the webhook payload this reads)')
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        problems.add("alerts", "must be a list")
        raise PayloadError(problems.found)
    if len(alerts) > MAX_ALERTS:
        problems.add("alerts", f"at most {MAX_ALERTS} alerts per payload (set max_alerts in Alertmanager)")
        raise PayloadError(problems.found)
    records = [_record(alert, f"alerts[{i}]", now, problems) for i, alert in enumerate(alerts)]
    if problems.found:
        raise PayloadError(problems.found)
    return [r for r in records if r is not None]
