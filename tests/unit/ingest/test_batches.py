"""Per-type counts for telemetry and locating NaN/Infinity in refused bodies."""

from __future__ import annotations

import pytest

from services.ingest.api.events import census
from services.ingest.domain.batches import label_of, non_finite_numbers

pytestmark = pytest.mark.unit


def test_labels_are_bounded() -> None:
    assert [label_of(k) for k in ("share", "block", "miner", "payout", None, 3)] == [
        "share", "block", "miner", "other", "other", "other"]


def test_census_of_array_and_ndjson() -> None:
    body = b'[{"type":"share"},{"type":"share"},{"type":"x"},5]'
    assert census(body, ndjson=False) == {"share": 2, "other": 2}
    assert census(b'{"type":"block"}\n\nnot json\n{"type":"miner"}', ndjson=True) == {
        "block": 1, "miner": 1, "other": 1}
    assert census(b"[{", ndjson=False) == {}
    assert census(b'{"type":"share"}', ndjson=False) == {}


def test_non_finite_numbers_are_located() -> None:
    body = b'[{"difficulty": 1}, {"difficulty": NaN, "x": {"y": [Infinity]}}, {"r": -1e999}]'
    assert non_finite_numbers(body, ndjson=False) == [
        (1, "difficulty", "NaN"), (1, "x.y.0", "Infinity"), (2, "r", "-1e999")]


def test_non_finite_numbers_in_ndjson_keep_line_indices() -> None:
    body = b'{"a": 1}\n{broken\n{"difficulty": -Infinity}'
    assert non_finite_numbers(body, ndjson=True) == [(2, "difficulty", "-Infinity")]


def test_nothing_to_locate_in_plain_bad_json() -> None:
    assert non_finite_numbers(b"[{", ndjson=False) == []
    assert non_finite_numbers(b'{"a": NaN}', ndjson=False) == []  # not an array
