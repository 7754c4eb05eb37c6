"""The demo's live view (pure): windows filling before the pool's first share, units, escaping."""

from __future__ import annotations

import pytest
from rich.console import Console

from chimera.demo.view import DemoState, Notice, filling, human_hashrate, render

pytestmark = pytest.mark.unit

MINUTE = 60_000


@pytest.mark.parametrize(("window", "first_ms", "as_of_ms", "expected"), [
    (5, 10 * MINUTE + 30_000, 12 * MINUTE, 2),  # first share in minute 10: minutes 10 and 11 complete
    (5, 10 * MINUTE, 15 * MINUTE, None),  # five complete minutes: full
    (1, 10 * MINUTE + 59_999, 10 * MINUTE, 0),  # the first minute is not complete yet
    (60, 0, 59 * MINUTE, 59),
    (5, None, 12 * MINUTE, None),  # nothing known: shown as is
    (5, 10 * MINUTE, None, None),
])
def test_filling(window: int, first_ms: int | None, as_of_ms: int | None, expected: int | None) -> None:
    assert filling(window, first_ms, as_of_ms) == expected


@pytest.mark.parametrize(("hs", "text"), [(None, "-"), (0.0, "0 H/s"), (999.0, "999 H/s"), (1.5e12, "1.50 TH/s"),
                                          (2.25e15, "2.25 PH/s"), (3e18, "3.00 EH/s")])
def test_hashrate_units(hs: float | None, text: str) -> None:
    assert human_hashrate(hs) == text


def _text(state: DemoState) -> str:
    console = Console(width=200, record=True)
    console.print(render(state))
    return console.export_text()


def test_a_young_pool_says_its_windows_are_filling() -> None:
    windows = ("1m", "5m", "15m", "1h", "24h")
    state = DemoState(first_share_ms=10 * MINUTE, pool_as_of_ms=12 * MINUTE, pool={
        "hashrate": dict.fromkeys(windows, 2e15), "hashrate_lower": dict.fromkeys(windows, 1.9e15),
        "hashrate_upper": dict.fromkeys(windows, 2.1e15), "shares": dict.fromkeys(windows, 1200),
        "shares_per_second": {"1m": 20.0}, "efficiency": {"15m": 0.985}, "active_miners": 20,
        "active_workers": 77, "blocks_found": 3, "round_effort": 0.42, "luck": {"64": 1.1, "128": 0.9}})
    text = _text(state)
    assert "2.00 PH/s" in text and "1.90 PH/s .. 2.10 PH/s" in text  # 1m: complete
    assert "filling, 2 of 5 minutes" in text and "filling, 2 of 1440 minutes" in text
    assert "active miners 20, workers 77" in text and "efficiency 98.5%" in text
    assert "round effort 42.0%" in text and "luck 64:1.10 128:0.90" in text


def test_names_from_miners_are_shown_as_text_not_markup() -> None:
    state = DemoState(firing=[{"name": "worker offline", "labels": {"worker": "[bold red]x[/]"},
                               "fired_at": "2026-12-02T00:00:00Z"}],
                      notices=[Notice("00:00:01", "firing", ("worker offline (worker=[blink]y[/])",))])
    text = _text(state)
    assert "worker=[bold red]x[/]" in text and "worker=[blink]y[/]" in text
