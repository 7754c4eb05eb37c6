"""Bodies of the metrics API, their Kafka envelopes, and query-parameter parsing."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from services.ingest.api.common_params import parse_time, time_range
from services.ingest.api.metric_bodies import (
    MetricIn,
    MinerReportIn,
    PerformanceIn,
    metric_envelope,
    miner_envelope,
    performance_envelope,
)
from services.ingest.domain.metrics import merge_miner_reports
from shared.http.errors import ApiError
from shared.metric_envelopes import (
    MetricEnvelope,
    MinerReportEnvelope,
    PerformanceEnvelope,
    decode_envelope,
    encode_envelope,
    record_key,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def errors(model: Any, body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(orjson.dumps(body))
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in caught.value.errors()]


def test_metric_defaults() -> None:
    body = MetricIn.model_validate_json(b'{"name": "queue_depth", "value": 3}')
    assert (body.type, body.labels, body.timestamp) == ("gauge", {}, None)


@pytest.mark.parametrize("ts", ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00", 1_767_225_600_000])
def test_metric_timestamp_forms(ts: Any) -> None:
    body = MetricIn.model_validate_json(orjson.dumps({"name": "m", "value": 1, "timestamp": ts}))
    assert body.timestamp == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"name": "1abc", "value": 1}, "name", "pattern"),
        ({"name": "has-dash", "value": 1}, "name", "pattern"),
        ({"name": "", "value": 1}, "name", "at least 1"),
        ({"name": "chimera_x", "value": 1}, "name", "reserved"),
        ({"name": "m", "value": "1"}, "value", "valid number"),
        ({"name": "m", "value": True}, "value", "valid number"),
        ({"name": "m"}, "value", "required"),
        ({"name": "m", "value": 1, "type": "summary"}, "type", "gauge"),
        ({"name": "m", "value": -1, "type": "counter"}, "value", "increment"),
        ({"name": "m", "value": 1, "labels": {"bad-name": "x"}}, "labels", "bad-name"),
        ({"name": "m", "value": 1, "labels": {"__name__": "x"}}, "labels", "reserved"),
        ({"name": "m" * 129, "value": 1}, "name", "at most 128"),
        ({"name": "m", "value": 1, "labels": {"l" * 65: "x"}}, "labels", "at most 64"),
        ({"name": "m", "value": 1, "labels": {"a": 1}}, "labels.a", "string"),
        ({"name": "m", "value": 1, "labels": {"a": "x" * 129}}, "labels.a", "at most 128"),
        ({"name": "m", "value": 1, "labels": {f"l{i}": "v" for i in range(9)}}, "labels", "at most 8"),
        ({"name": "m", "value": 1, "type": "histogram", "labels": {"le": "1"}}, "labels", "le"),
        ({"name": "m", "value": 1, "timestamp": "2026-01-01T00:00:00"}, "timestamp", "offset"),
        ({"name": "m", "value": 1, "timestamp": 10}, "timestamp", "2009"),
        ({"name": "m", "value": 1, "tags": {}}, "tags", "Extra"),
        # PostgreSQL cannot store U+0000: refused up front rather than acknowledged and lost.
        ({"name": "m", "value": 1, "labels": {"a": "x\x00y"}}, "labels.a", "NUL"),
    ],
)
def test_metric_errors_name_the_field(body: dict[str, Any], field: str, fragment: str) -> None:
    found = errors(MetricIn, body)
    assert any(loc == field and fragment.lower() in msg.lower() for loc, msg in found), found


def test_metric_bounds_are_inclusive() -> None:
    # The largest sample allowed: it bounds what one series costs on /metrics.
    labels = {f"l{i}".ljust(64, "x"): "v" * 128 for i in range(8)}
    body = MetricIn.model_validate_json(orjson.dumps({"name": "m" * 128, "value": 1, "labels": labels}))
    assert (len(body.name), len(body.labels)) == (128, 8)


def test_metric_timestamp_far_in_the_future_is_refused() -> None:
    future_ms = time.time_ns() // 1_000_000 + 10 * 60_000
    assert errors(MetricIn, {"name": "m", "value": 1, "timestamp": future_ms})[0][0] == "timestamp"


@pytest.mark.parametrize("raw", [b'{"name":"m","value":NaN}', b'{"name":"m","value":Infinity}'])
def test_non_finite_values_are_refused(raw: bytes) -> None:
    # FastAPI parses bodies with the json module, which reads NaN; validation must still refuse it.
    import json

    with pytest.raises(ValidationError) as caught:
        MetricIn.model_validate(json.loads(raw))
    assert caught.value.errors()[0]["loc"] == ("value",)


def test_performance_needs_a_measurement() -> None:
    found = errors(PerformanceIn, {"host": "node-1"})
    assert "at least one of cpu_usage" in found[0][1]
    ok = PerformanceIn.model_validate_json(b'{"host": "node-1", "cpu_usage": 150.5}')
    assert (ok.service, ok.cpu_usage, ok.memory_usage) == ("", 150.5, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"host": "node 1", "cpu_usage": 1}, "host"),
        ({"host": "n", "cpu_usage": -1}, "cpu_usage"),
        ({"host": "n", "network_in_bytes": 1.5}, "network_in_bytes"),
        ({"host": "n", "network_out_bytes": 2**63}, "network_out_bytes"),
        ({"host": "n", "load_average": None, "disk_usage": "3"}, "disk_usage"),
    ],
)
def test_performance_errors(body: dict[str, Any], field: str) -> None:
    assert field in [loc for loc, _ in errors(PerformanceIn, body)]


def test_miner_report_cannot_carry_share_counts() -> None:
    found = errors(MinerReportIn, {"miner": "alice", "reported_hashrate": 1e12, "accepted": 10})
    assert found == [("accepted", "Extra inputs are not permitted")]


def test_miner_report_defaults_and_needs_a_field() -> None:
    body = MinerReportIn.model_validate_json(b'{"miner": "alice", "user_agent": "bmminer/2"}')
    assert (body.worker, body.pool) == ("default", "main")
    assert "at least one of reported_hashrate" in errors(MinerReportIn, {"miner": "alice"})[0][1]
    assert errors(MinerReportIn, {"miner": "a b", "reported_hashrate": 1})[0][0] == "miner"
    assert errors(MinerReportIn, {"miner": "a", "share_difficulty": 0})[0][0] == "share_difficulty"
    assert errors(MinerReportIn, {"miner": "a", "user_agent": "ua\x00"})[0][0] == "user_agent"
    assert errors(MinerReportIn, {"miner": "a\x85b", "user_agent": "ua"})[0][0] == "miner"


def test_envelopes_round_trip_and_default_to_now() -> None:
    metric = metric_envelope(MetricIn(name="m", value=2.5, labels={"a": "b"}, type="counter"), NOW)
    performance = performance_envelope(PerformanceIn(host="h1", cpu_usage=12.5, network_in_bytes=10), NOW)
    miner = miner_envelope(MinerReportIn.model_validate_json(
        b'{"miner": "alice", "worker": "rig1", "reported_hashrate": 1.5e12, "timestamp": "2026-03-01T11:59:10Z"}'), NOW)
    assert metric.ts == NOW and performance.ts == NOW
    assert miner.ts == datetime(2026, 3, 1, 11, 59, 10, tzinfo=UTC)
    for envelope in (metric, performance, miner):
        raw = encode_envelope(envelope)
        assert decode_envelope(raw) == envelope
    assert orjson.loads(encode_envelope(metric)) == {
        "kind": "metric", "id": str(metric.id), "ts": "2026-03-01T12:00:30.000Z",
        "name": "m", "type": "counter", "value": 2.5, "labels": {"a": "b"},
    }
    assert (record_key(metric), record_key(performance), record_key(miner)) == (b"m", b"h1", b"alice")
    assert metric.id != performance.id


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"kind": "other", "id": "x"}', b'{"kind": "metric"}',
     (b'{"kind": "metric", "id": "not-a-uuid", "ts": 1767225600000, "name": "m", "type": "gauge", "value": 1,'
      b' "labels": {}}')],
)
def test_bad_envelopes_raise_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_envelope(raw)


def test_envelopes_ignore_fields_added_later() -> None:
    raw = orjson.dumps({"kind": "performance", "id": str(uuid.uuid4()), "ts": 1_767_225_600_000, "host": "h",
                        "service": "", "labels": {}, "gpu_usage": 3})
    assert isinstance(decode_envelope(raw), PerformanceEnvelope)


def _report(minute_s: int, **fields: Any) -> MinerReportEnvelope:
    return MinerReportEnvelope(id=uuid.uuid4(), ts=NOW + timedelta(seconds=minute_s), pool="main", miner="alice",
                               worker="rig1", **fields)


def test_miner_reports_merge_per_minute_row_later_fields_winning() -> None:
    merged = dict(merge_miner_reports([
        _report(0, reported_hashrate=1.0),
        _report(10, user_agent="ua/1"),
        _report(20, reported_hashrate=2.0),
        _report(40, share_difficulty=8.0),  # 12:01:10: the next minute
    ]))
    minute = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert merged == {
        ("main", "alice", "rig1", minute): {"reported_hashrate": 2.0, "share_difficulty": None, "user_agent": "ua/1"},
        ("main", "alice", "rig1", minute + timedelta(minutes=1)):
            {"reported_hashrate": None, "share_difficulty": 8.0, "user_agent": None},
    }


def test_metric_envelope_is_a_metric() -> None:
    assert isinstance(decode_envelope(encode_envelope(metric_envelope(MetricIn(name="x", value=1), NOW))),
                      MetricEnvelope)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T02:00:00.5+02:00", datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)),
        ("1767225600000", datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_time_parameters(value: str, expected: datetime) -> None:
    assert parse_time(value, "query.from") == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
                                   "999999999999999", "1.5"])
def test_bad_time_parameters_name_the_field(value: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_time(value, "query.to")
    assert caught.value.status == 422
    assert caught.value.details[0]["field"] == "query.to"


def test_time_range_defaults_and_order() -> None:
    start, end = time_range(None, None, default_span=timedelta(hours=1), default_end=NOW)
    assert (start, end) == (NOW - timedelta(hours=1), NOW)
    with pytest.raises(ApiError) as caught:
        time_range("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", default_span=timedelta(hours=1))
    assert caught.value.details[0]["field"] == "query.from"


def test_decoding_does_not_reapply_the_future_bound() -> None:
    """A consumer with a lagging clock must not dead-letter what the API accepted."""
    ahead = datetime.now(UTC) + timedelta(minutes=30)
    raw = orjson.dumps({"kind": "metric", "id": str(uuid.uuid4()), "ts": ahead.isoformat(), "name": "m",
                        "type": "gauge", "value": 1, "labels": {}})
    assert decode_envelope(raw).ts == ahead.replace(microsecond=ahead.microsecond // 1000 * 1000)
