"""The pure helpers of POST /v1/events and of the request telemetry."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.ingest.api.events import MAX_DETAILS, details_of, invalid_message, locate_non_finite
from services.ingest.api.middleware import UNMATCHED_ROUTE, method_label, route_template
from shared.events import FieldError

pytestmark = pytest.mark.unit


def test_details_name_the_body_for_body_level_errors_and_are_capped() -> None:
    assert details_of([FieldError(None, "", "Body is empty")]) == [
        {"index": None, "field": "body", "message": "Body is empty"}]
    assert details_of([FieldError(3, "ts", "too far")]) == [
        {"index": 3, "field": "ts", "message": "too far"}]
    many = [FieldError(i, "difficulty", "bad") for i in range(500)]
    assert len(details_of(many)) == MAX_DETAILS
    assert f"first {MAX_DETAILS} of 500" in invalid_message(many)


def test_invalid_message_counts_events() -> None:
    assert invalid_message([FieldError(1, "a", "x"), FieldError(1, "b", "y")]).startswith(
        "1 event is invalid")
    assert invalid_message([FieldError(1, "a", "x"), FieldError(4, "a", "y")]).startswith(
        "2 events are invalid")
    assert invalid_message([FieldError(None, "", "x")]).startswith("the body is invalid")


def test_nan_replaces_the_unlocated_json_error() -> None:
    raw = b'[{"difficulty": 1}, {"difficulty": NaN}]'
    errors = locate_non_finite(raw, False, [FieldError(None, "", "Body is not valid JSON")])
    assert [(e.index, e.field) for e in errors] == [(1, "difficulty")]
    assert "NaN" in errors[0].message


def test_ndjson_keeps_other_lines_errors() -> None:
    raw = b'{broken\n{"difficulty": Infinity}'
    errors = [FieldError(0, "", "Line is not valid JSON"), FieldError(1, "", "Line is not valid JSON")]
    located = locate_non_finite(raw, True, errors)
    assert [(e.index, e.field) for e in located] == [(0, ""), (1, "difficulty")]


def test_field_errors_are_left_alone() -> None:
    errors = [FieldError(0, "difficulty", "Input should be greater than 0")]
    assert locate_non_finite(b"[]", False, errors) is errors


def test_route_labels_are_templates_and_methods_are_bounded() -> None:
    route = SimpleNamespace(path="/api/miners/{miner}/stats", path_format="/api/miners/{miner}/stats")
    assert route_template({"route": route}) == "/api/miners/{miner}/stats"
    assert route_template({}) == UNMATCHED_ROUTE
    assert method_label({"method": "POST"}) == "POST"
    assert method_label({"method": "PROPFIND"}) == "OTHER"


def test_deeply_nested_bodies_do_not_exhaust_the_stack() -> None:
    from services.ingest.domain.batches import non_finite_numbers

    raw = b'[{"a": ' + b"[" * 900 + b"NaN" + b"]" * 900 + b"}]"
    found = non_finite_numbers(raw, ndjson=False)
    assert len(found) == 1 and found[0][0] == 0 and found[0][2] == "NaN"
