"""`chimera simulate`: its flags made into a pool, sinks and a clock; progress on stdout.

chimera/cli.py declares the flags; this module owns what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Final, TextIO

from chimera.simulate.config import PoolConfig, VardiffConfig
from chimera.simulate.http_sink import HttpSink
from chimera.simulate.kafka_sink import KafkaSink
from chimera.simulate.pool import SimulatedPool
from chimera.simulate.records import iso_ms
from chimera.simulate.runner import Clock, Fast, RealTime, RunReport, run
from chimera.simulate.scenario import Scenario, ScenarioError
from chimera.simulate.sinks import DeliveryError, EventSink, MetricSink
from chimera.simulate.truth import TruthLog
from shared.durations import parse_duration_ms
from shared.settings import ServiceSettings, load

__all__ = ["config_from_args", "run_command", "simulate", "span_from_args"]

KEY_ENV: Final = "CHIMERA_API_KEY"
MAX_FAST_SPAN_MS: Final = 24 * 3_600_000  # contract section 2: older shares are dropped
PROGRESS_EVERY_S: Final = 5.0


class UsageError(ValueError):
    """The flags do not describe a run; exit status 2."""


def config_from_args(args: argparse.Namespace) -> PoolConfig:
    """The PoolConfig the flags describe (ValueError, ScenarioError when they do not)."""
    scenario = Scenario.load(args.scenario) if args.scenario else Scenario()
    try:
        block_every_ms = parse_duration_ms(args.block_every)
    except ValueError as exc:
        raise UsageError(f"--block-every: {exc}") from None
    return PoolConfig(
        miners=args.miners, pool=args.pool, scenario=scenario,
        vardiff=VardiffConfig(share_rate=args.share_rate),
        reject_rate=args.reject_rate, stale_rate=args.stale_rate,
        network_difficulty=args.network_difficulty, block_every_ms=block_every_ms,
        orphan_rate=args.orphan_rate,
    )


def span_from_args(args: argparse.Namespace) -> int | None:
    if args.span is None:
        return 3_600_000 if args.speed == "fast" else None
    try:
        span_ms = parse_duration_ms(args.span)
    except ValueError as exc:
        raise UsageError(f"--span: {exc}") from None
    if span_ms <= 0:
        raise UsageError("--span must be longer than 0")
    if args.speed == "fast" and span_ms > MAX_FAST_SPAN_MS:
        raise UsageError("--span: at most 24h in fast mode (the pool drops shares older than 24 hours)")
    return span_ms


def run_command(args: argparse.Namespace) -> int:
    return asyncio.run(simulate(args))


async def simulate(args: argparse.Namespace, *, settings: Callable[[], ServiceSettings] | None = None,
                   out: TextIO = sys.stdout) -> int:
    """Run the simulation the flags describe; the exit status (0, 1 delivery failed, 2 bad flags)."""
    try:
        config = config_from_args(args)
        span_ms = span_from_args(args)
        pool = SimulatedPool(config, seed=args.seed)
    except (ValueError, ScenarioError) as exc:
        print(f"chimera simulate: {exc}", file=sys.stderr)
        return 2
    key = args.key or os.environ.get(KEY_ENV)
    if key is None and not args.kafka:
        print(f"chimera simulate: an ingest key is needed: --key or {KEY_ENV} "
              "(chimera keys create --scopes ingest --name simulator)", file=sys.stderr)
        return 2
    try:
        return await _simulate(pool, args, key, span_ms, settings or _env_settings, out)
    except DeliveryError as exc:
        print(f"chimera simulate: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the truth file cannot be written
        print(f"chimera simulate: {exc}", file=sys.stderr)
        return 2


async def _simulate(pool: SimulatedPool, args: argparse.Namespace, key: str | None, span_ms: int | None,
                    settings: Callable[[], ServiceSettings], out: TextIO) -> int:
    clock: Clock = Fast() if args.speed == "fast" else RealTime()
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(HttpSink(args.url, key)) if key is not None else None
        sink: EventSink
        if args.kafka:
            sink = await stack.enter_async_context(KafkaSink(settings()))
        elif http is not None:
            sink = http
        else:
            raise ValueError("no sink: neither --kafka nor an ingest key")  # ruled out by simulate()
        metrics: MetricSink | None = None if args.no_metrics else http
        truth = stack.enter_context(TruthLog(args.truth)) if args.truth else None
        _announce(pool, args, span_ms, metrics is not None, out)
        progress = _Progress(pool, sink, out)
        report = await run(pool, sink, clock, span_ms=span_ms, metrics=metrics,
                           send_metrics=metrics is not None, truth=truth, on_span=progress)
        progress.line(report)
        if truth is not None:
            print(f"ground truth: {truth.path}", file=out)
    return 0


def _env_settings() -> ServiceSettings:
    return load(ServiceSettings)


def _announce(pool: SimulatedPool, args: argparse.Namespace, span_ms: int | None, metrics: bool,
              out: TextIO) -> None:
    miners = len({w.miner for w in pool.workers})
    where = "Kafka (pool.* topics)" if args.kafka else f"{args.url}/v1/events"
    extra = f", metrics to {args.url}/api/metrics" if metrics else ", no metrics"
    block_every_s = pool.network_difficulty * 2**32 / max(pool.healthy_hashrate_hs, 1.0)
    print(f"simulated pool {args.pool!r} (seed {args.seed}): {miners} miners, {len(pool.workers)} workers, "
          f"{pool.healthy_hashrate_hs / 1e15:.2f} PH/s; network difficulty {pool.network_difficulty:.4g} "
          f"(a block every ~{block_every_s / 60:.1f} min at full hashrate)", file=out)
    pace = ("fast: the span ending now" if args.speed == "fast"
            else "real time" + (f" for {args.span}" if span_ms is not None else ", until Ctrl-C"))
    print(f"events to {where}{extra}; {pace}", file=out, flush=True)


class _Progress:
    def __init__(self, pool: SimulatedPool, sink: EventSink, out: TextIO) -> None:
        self._pool, self._sink, self._out = pool, sink, out
        self._last = time.monotonic()

    def __call__(self, report: RunReport) -> None:
        if time.monotonic() - self._last >= PROGRESS_EVERY_S:
            self.line(report)

    def line(self, report: RunReport) -> None:
        self._last = time.monotonic()
        events = report.events
        print(f"{iso_ms(report.reached_ms)}  shares {events['share']:>8}  blocks {events['block']:>4}  "
              f"miner events {events['miner']:>5}  metrics {report.metrics + report.performance:>5}  "
              f"retries {self._sink.stats.retries}  hashrate {self._pool.pool_hashrate_hs / 1e15:.2f} PH/s",
              file=self._out, flush=True)
