"""SIGKILL of the aggregator process at a random moment mid-stream, then a restart:
the final figures are exact (nothing lost, nothing counted twice)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.db import connect

from .conftest import (
    assert_figures,
    end_offsets,
    produce,
    settings_env,
    stored_offsets,
    wait_caught_up,
)
from .streams import make_stream

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _spawn(settings, log: Path) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    env = {**os.environ, **settings_env(settings), "LOG_LEVEL": "INFO"}
    with log.open("ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "services.aggregator"], cwd=ROOT, env=env,
                                stdout=sink, stderr=subprocess.STDOUT)


async def _progress(settings) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    ends = await end_offsets(settings)
    conn = await connect(settings)
    try:
        stored = await stored_offsets(conn, settings)
    finally:
        await conn.close()
    return sum(min(stored.get(tp, 0), end) for tp, end in ends.items()), sum(ends.values())


async def test_sigkill_mid_stream_then_restart_is_exact(agg_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = agg_settings.model_copy(update={"aggregator_batch_max_records": 2_000})
    events, truth = make_stream(seed=31, shares=60_000)
    half = len(events) // 2
    await produce(settings, events[:half])
    log = tmp_path / "aggregator.log"
    first = _spawn(settings, log)
    try:
        deadline = time.monotonic() + 30
        while True:  # until it is visibly working through the backlog
            done, total = await _progress(settings)
            if done >= total * 0.15:
                break
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.05)
        await asyncio.sleep(random.uniform(0.0, 0.2))
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    done, total = await _progress(settings)
    assert done < total, "killed too late to be mid-stream"

    await produce(settings, events[half:])
    second = _spawn(settings, log)
    try:
        await wait_caught_up(settings, timeout_s=45)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()[-3000:]  # graceful stop
    finally:
        if second.poll() is None:
            second.kill()
    await assert_figures(settings, truth)
