"""Lateness against the event-time watermark."""

from __future__ import annotations

import pytest

from services.aggregator.domain.lateness import MAX_LATENESS_MS, classify_lateness

from .samples import HOUR, MIN, T0_MS

pytestmark = pytest.mark.unit

WM = T0_MS + 30_000  # the watermark is mid-minute T0


@pytest.mark.parametrize(
    ("ts_ms", "watermark_ms", "max_lateness_ms", "expected"),
    [
        (WM, WM, MAX_LATENESS_MS, "on_time"),
        (WM + 5 * MIN, WM, MAX_LATENESS_MS, "on_time"),  # ahead of the watermark
        (T0_MS, WM, MAX_LATENESS_MS, "on_time"),  # same minute as the watermark
        (T0_MS - 1, WM, MAX_LATENESS_MS, "late"),  # a minute already complete
        (WM - HOUR, WM, MAX_LATENESS_MS, "late"),
        (WM - 24 * HOUR, WM, MAX_LATENESS_MS, "late"),  # exactly 24 h old: still counted
        (WM - 24 * HOUR - 1, WM, MAX_LATENESS_MS, "too_late"),
        (WM - 10 * MIN - 1, WM, 10 * MIN, "too_late"),  # the limit is a parameter
        (WM - 10 * MIN, WM, 10 * MIN, "late"),
        (0, 0, MAX_LATENESS_MS, "on_time"),  # epoch edge
        (-1, 0, MAX_LATENESS_MS, "late"),
    ],
)
def test_classify_lateness(ts_ms: int, watermark_ms: int, max_lateness_ms: int, expected: str) -> None:
    assert classify_lateness(ts_ms, watermark_ms, max_lateness_ms) == expected
