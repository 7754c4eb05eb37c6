"""The scale-out benchmark's CPU accounting (bench/aggregator_scaleout_bench.py): pure arithmetic on samples."""

from __future__ import annotations

import os

import pytest

from bench.aggregator_scaleout_bench import CpuSample, cores_used, cpu_s

pytestmark = pytest.mark.unit


def sample(at_s: float, aggregators: list[float], postgres: dict[int, float], busy_s: float,
           everyone: dict[int, tuple[str, float]]) -> CpuSample:
    return CpuSample(at_s, aggregators, postgres, {9: at_s / 100}, busy_s, everyone)


def test_cores_are_cpu_seconds_over_the_window() -> None:
    first = sample(10.0, [1.0, 2.0], {1: 5.0}, 100.0, {50: ("pytest", 3.0)})
    last = sample(12.0, [2.5, 3.0], {1: 5.5}, 103.6, {50: ("pytest", 3.2)})
    used = cores_used(first, last)
    assert used["aggregator_cores"] == [0.75, 0.5]
    assert used["postgres_cores"] == 0.25
    assert used["machine_busy_cores"] == 1.8
    assert used["other_cores"] == pytest.approx(1.8 - 1.25 - 0.25 - used["kafka_cores"], abs=0.01)
    assert used["top_processes"] == ["pytest[50] 0.10"]


def test_a_backend_forked_in_the_window_counts_whole_and_one_that_ended_counts_nothing() -> None:
    first = sample(0.0, [], {1: 5.0, 2: 9.0}, 0.0, {})
    last = sample(1.0, [], {1: 5.2, 3: 0.3}, 1.0, {})
    assert cores_used(first, last)["postgres_cores"] == 0.5


def test_cpu_seconds_of_a_live_process_and_of_none() -> None:
    assert cpu_s(os.getpid()) > 0
    assert cpu_s(2**22 + 7) == 0.0  # above the kernel's pid_max: never a process
