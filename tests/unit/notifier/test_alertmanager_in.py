"""Alertmanager's webhook payload (v4) as chimera.alerts records, field by field, and every way it can be wrong."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notifier.domain.alertmanager_in import (
    MAX_ALERTS,
    MAX_FIELDS,
    MAX_PROBLEMS,
    MAX_VALUE_CHARS,
    PayloadError,
    records_from_webhook,
)
from services.notifier.domain.message_group import AlertView
from shared.labels import label_set_key

pytestmark = pytest.mark.unit

NOW = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)

# As Alertmanager 0.27 posts it (nanoseconds, Go's zero time for a firing alert's end).
PAYLOAD: dict[str, Any] = {
    "receiver": "chimera",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "NodeDown", "instance": "pool-node-1:9100", "severity": "critical"},
            "annotations": {"summary": "pool-node-1 is down", "description": "no scrape for 5m"},
            "startsAt": "2024-05-01T12:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
            "fingerprint": "c5a1e6c3f1d2b4a7",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "page"},
            "annotations": {},
            "startsAt": "2024-05-01T10:00:00+02:00",
            "endsAt": "2024-05-01T12:30:00Z",
            "generatorURL": "",
            "fingerprint": "0a1b2c3d4e5f6071",
        },
    ],
    "groupLabels": {"alertname": "NodeDown"},
    "commonLabels": {},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}:{alertname="NodeDown"}',
    "truncatedAlerts": 0,
}


def _fields(error: PayloadError) -> list[str]:
    return [p.field for p in error.problems]


def _broken(path: list[Any], value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    payload = copy.deepcopy(PAYLOAD)
    node: Any = payload
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return payload


def test_a_firing_alert_becomes_the_record_the_alerter_would_publish() -> None:
    record = records_from_webhook(PAYLOAD, now=NOW)[0]
    assert record == {
        "fingerprint": "am-c5a1e6c3f1d2b4a7",
        "status": "firing",
        "starts_at": "2024-05-01T12:00:00.123456Z",
        "ends_at": None,
        "fired_at": "2024-05-01T12:00:00.123456Z",
        "labels": {"alertname": "NodeDown", "instance": "pool-node-1:9100", "severity": "critical"},
        "annotations": {"summary": "pool-node-1 is down", "description": "no scrape for 5m"},
        "severity": "critical",
        "name": "NodeDown",
        "value": None,
        "threshold": None,
        "rule_id": None,
        "alert_id": None,
        "reason": None,
        "generator_url": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
        "source": "alertmanager",
    }


def test_a_resolved_alert_keeps_its_times_in_utc_and_an_unknown_severity_reads_as_warning() -> None:
    record = records_from_webhook(PAYLOAD, now=NOW)[1]
    assert (record["status"], record["starts_at"], record["ends_at"], record["fired_at"]) == (
        "resolved", "2024-05-01T08:00:00Z", "2024-05-01T12:30:00Z", None)
    assert record["severity"] == "warning" and record["labels"]["severity"] == "page"
    assert record["fingerprint"] == "am-0a1b2c3d4e5f6071" and record["reason"] == "resolved in Alertmanager"


def test_the_records_are_what_the_notifier_reads() -> None:
    for record in records_from_webhook(PAYLOAD, now=NOW):
        view = AlertView.from_record(record, generator_url=record["generator_url"])
        assert view.fingerprint == record["fingerprint"] and view.name == record["name"]


def test_without_a_fingerprint_the_label_set_makes_one() -> None:
    payload = _broken(["alerts", 0, "fingerprint"], delete=True)
    labels = PAYLOAD["alerts"][0]["labels"]
    assert records_from_webhook(payload, now=NOW)[0]["fingerprint"] == "am-" + label_set_key("alertmanager", labels)
    empty = _broken(["alerts", 0, "fingerprint"], "")
    assert records_from_webhook(empty, now=NOW)[0]["fingerprint"] == "am-" + label_set_key("alertmanager", labels)


def test_a_resolved_alert_without_an_end_ended_now() -> None:
    for end in (None, "", "0001-01-01T00:00:00Z"):
        payload = _broken(["alerts", 1, "endsAt"], end)
        assert records_from_webhook(payload, now=NOW)[1]["ends_at"] == "2024-05-01T13:00:00Z"


def test_no_severity_label_reads_as_warning() -> None:
    payload = copy.deepcopy(PAYLOAD)
    del payload["alerts"][0]["labels"]["severity"]
    assert records_from_webhook(payload, now=NOW)[0]["severity"] == "warning"


def test_no_alerts_no_records() -> None:
    assert records_from_webhook({"version": "4", "alerts": []}, now=NOW) == []


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["alerts", 1, "labels", "alertname"], None, "alerts[1].labels.alertname"),
        (["alerts", 1, "labels", "alertname"], "  ", "alerts[1].labels.alertname"),
        (["alerts", 1, "labels"], None, "alerts[1].labels.alertname"),
        (["alerts", 0, "labels"], ["alertname"], "alerts[0].labels"),
        (["alerts", 0, "labels", "instance"], 7, "alerts[0].labels.instance"),
        (["alerts", 0, "labels", "instance"], "x" * (MAX_VALUE_CHARS + 1), "alerts[0].labels.instance"),
        (["alerts", 0, "labels", "instance"], "a\x00b", "alerts[0].labels.instance"),
        (["alerts", 0, "annotations", "summary"], "\ud800", "alerts[0].annotations.summary"),
        (["alerts", 0, "status"], "pending", "alerts[0].status"),
        (["alerts", 0, "startsAt"], None, "alerts[0].startsAt"),
        (["alerts", 0, "startsAt"], "2024-05-01 12:00", "alerts[0].startsAt"),
        (["alerts", 0, "startsAt"], "2024-05-01T12:00:00", "alerts[0].startsAt"),
        (["alerts", 0, "startsAt"], "2024-02-30T12:00:00Z", "alerts[0].startsAt"),
        (["alerts", 1, "endsAt"], "2024-05-01T07:00:00Z", "alerts[1].endsAt"),
        (["alerts", 0, "fingerprint"], "not hex!", "alerts[0].fingerprint"),
        (["alerts", 0, "generatorURL"], 5, "alerts[0].generatorURL"),
        (["alerts", 0], "an alert", "alerts[0]"),
        (["alerts"], {"0": {}}, "alerts"),
        (["version"], "3", "version"),
    ],
)
def test_a_wrong_field_is_named(path: list[Any], value: Any, field: str) -> None:
    if value is None and path[-1] in ("alertname", "labels"):
        payload = _broken(path, delete=True)
    else:
        payload = _broken(path, value)
    with pytest.raises(PayloadError) as caught:
        records_from_webhook(payload, now=NOW)
    assert field in _fields(caught.value)


def test_a_payload_that_is_no_object_is_refused() -> None:
    with pytest.raises(PayloadError) as caught:
        records_from_webhook([PAYLOAD], now=NOW)
    assert _fields(caught.value) == ["body"]


def test_counts_are_bounded() -> None:
    too_many = {"alerts": [PAYLOAD["alerts"][0]] * (MAX_ALERTS + 1)}
    with pytest.raises(PayloadError) as caught:
        records_from_webhook(too_many, now=NOW)
    assert _fields(caught.value) == ["alerts"]
    labels = {f"l{i}": "v" for i in range(MAX_FIELDS)} | {"alertname": "X"}
    with pytest.raises(PayloadError) as caught:
        records_from_webhook(_broken(["alerts", 0, "labels"], labels), now=NOW)
    assert _fields(caught.value) == ["alerts[0].labels"]


def test_every_problem_is_reported_up_to_a_bound_and_none_of_the_payload_is_taken() -> None:
    bad = {"status": "firing", "labels": {}, "startsAt": "2024-05-01T12:00:00Z"}
    payload = {"alerts": [PAYLOAD["alerts"][0], *([bad] * (MAX_PROBLEMS + 5))]}
    with pytest.raises(PayloadError) as caught:
        records_from_webhook(payload, now=NOW)
    assert _fields(caught.value) == [f"alerts[{i}].labels.alertname" for i in range(1, MAX_PROBLEMS + 1)]


def test_now_must_carry_its_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        records_from_webhook(PAYLOAD, now=datetime(2024, 5, 1, 13, 0))
