"""Which hours and days a roll-up pass recomputes (domain/rollup_plan.py)."""

from __future__ import annotations

import pytest

from services.aggregator.domain.rollup_plan import DAY_MS, HOUR_MS, plan_pass, ranges

from .samples import T0_MS

pytestmark = pytest.mark.unit

H = HOUR_MS


@pytest.mark.parametrize(
    ("starts", "step", "expected"),
    [
        ([], H, []),
        ([5 * H], H, [(5 * H, 6 * H)]),
        ([5 * H + 123, 6 * H, 5 * H], H, [(5 * H, 7 * H)]),  # floored, deduplicated, merged
        ([9 * H, 5 * H, 7 * H], H, [(5 * H, 6 * H), (7 * H, 8 * H), (9 * H, 10 * H)]),
        ([23 * H, 24 * H, 49 * H], DAY_MS, [(0, 3 * DAY_MS)]),
    ],
)
def test_ranges(starts: list[int], step: int, expected: list[tuple[int, int]]) -> None:
    assert ranges(starts, step) == expected


def test_a_regular_pass_takes_dirty_hours_plus_the_current_and_previous_hour() -> None:
    now = T0_MS + 10 * H + 42_000  # 10:00:42 on a day boundary's day
    plan = plan_pass(now, [T0_MS + 3 * H + 59 * 60_000])
    assert plan.hours == [(T0_MS + 3 * H, T0_MS + 4 * H), (T0_MS + 9 * H, T0_MS + 11 * H)]
    assert plan.days == [(T0_MS, T0_MS + DAY_MS)]
    assert plan.hour_count == 3


def test_a_lookback_pass_covers_the_last_25_hours_and_their_days() -> None:
    now = T0_MS + 10 * H + 1
    plan = plan_pass(now, [], lookback_hours=25)
    assert plan.hours == [(T0_MS - 14 * H, T0_MS + 11 * H)]
    assert plan.days == [(T0_MS - DAY_MS, T0_MS + DAY_MS)]


def test_a_late_hour_of_yesterday_brings_yesterday_in() -> None:
    plan = plan_pass(T0_MS + 30 * 60_000, [T0_MS - 20 * H])
    assert plan.hours == [(T0_MS - 20 * H, T0_MS - 19 * H), (T0_MS - H, T0_MS + H)]
    assert plan.days == [(T0_MS - DAY_MS, T0_MS + DAY_MS)]
