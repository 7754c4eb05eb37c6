"""The whole system for the console tests: the four services as processes, keys, and a simulated pool.

The services come from bench/e2e_support.py's `Stack` (its own topic prefix,
schema, ports and data folder; process groups; `close()` drops it all), pointed
at the suite's Kafka and PostgreSQL. On top: API keys made with `chimera keys
create`, an hour of simulated history sent fast, then the same pool in real time
so figures move while a page is open.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import httpx
from cryptography.fernet import Fernet

from chimera.devstack.config import PROJECT_ROOT
from shared.settings import ServiceSettings
from tests.conftest import Endpoints

SERVICES: Final = ("aggregator", "alerter", "notifier", "ingest")
MINER: Final = "m1"
OTHER_MINER: Final = "m2"
# A small pool whose figures move every second or two: 12 miners have about 30 workers;
# vardiff aims each at 0.2 shares/s, so the pool submits about 6 shares/s.
_SIMULATION: Final = ("--miners", "12", "--seed", "14", "--share-rate", "0.2", "--no-metrics", "--kafka")
_BACKFILL_TIMEOUT_S: Final = 180.0
_STOP_TIMEOUT_S: Final = 30.0

T = TypeVar("T")


@dataclass(frozen=True)
class Keys:
    admin: str
    read: str
    miner: str


def run_async(coroutine: Coroutine[Any, Any, T], timeout_s: float = 120.0) -> T:
    """Run `coroutine` to its end from synchronous code.

    In a thread of its own: the suite's session event loop may already run in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=timeout_s)


class _ServiceStack(Protocol):
    """What is used here of bench/e2e_support.py's `Stack`."""

    prefix: str
    schema: str
    data: Path
    settings: ServiceSettings
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]]

    async def prepare(self, extra_topics: list[str]) -> None: ...
    def environment(self, name: str) -> dict[str, str]: ...
    def start(self, name: str) -> None: ...
    async def wait_ready(self, names: list[str], timeout_s: float = ...) -> float: ...
    def died(self) -> list[str]: ...
    def log_tail(self, name: str, lines: int = ...) -> str: ...
    async def close(self) -> None: ...


def _bench_stack_class() -> Callable[[int, dict[str, dict[str, str]]], _ServiceStack]:
    # bench/ is a folder of scripts, not a package: its modules import each other by bare name.
    bench = str(PROJECT_ROOT / "bench")
    if bench not in sys.path:
        sys.path.append(bench)
    from e2e_support import Stack

    stack_class: Callable[[int, dict[str, dict[str, str]]], _ServiceStack] = Stack
    return stack_class


def _stop_group(process: subprocess.Popen[bytes], timeout_s: float = _STOP_TIMEOUT_S) -> None:
    """SIGTERM to the process group, SIGKILL if it outlives `timeout_s`. Safe on a finished one."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


class ConsoleStack:
    """The running system a console test reads: `base_url`, `keys`, and the ingest process to restart."""

    def __init__(self, endpoints: Endpoints) -> None:
        stack_class = _bench_stack_class()
        fernet_key = Fernet.generate_key().decode()
        self._stack = stack_class(3, {
            "all": {"NOTIFIER_SECRET_KEYS": fernet_key, "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8,::1"},
            # A browser page opens several requests at once; the rate limit has its own tests.
            "ingest": {"RATE_LIMIT_PER_SECOND": "100000"},
            # Live figures every second instead of every five; the hour roll-ups the day charts draw
            # within seconds of the backfill instead of a minute.
            "aggregator": {"SNAPSHOT_INTERVAL_S": "1", "ROLLUP_INTERVAL_S": "5"},
        })
        # The suite's broker and database, whichever way `endpoints` found them.
        self._stack.settings = ServiceSettings(
            kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
            kafka_topic_prefix=self._stack.prefix, kafka_topic_partitions=3,
            database_url=endpoints.database_url, database_schema=self._stack.schema)
        self._simulator: subprocess.Popen[bytes] | None = None
        self._closed = False
        self.keys = Keys("", "", "")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._stack.ports['ingest']}"

    def api(self, path: str, key: str) -> Any:
        """GET a JSON API route with `key`; the parsed answer (AssertionError on anything but 200)."""
        answer = httpx.get(f"{self.base_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.text[:500]}"
        return answer.json()

    def _chimera(self, *args: str, timeout_s: float = 120.0) -> str:
        done = subprocess.run([sys.executable, "-m", "chimera.cli", *args], cwd=PROJECT_ROOT,
                              env=self._stack.environment("ingest"), capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        assert done.returncode == 0, f"chimera {' '.join(args)}: {done.stderr[-2000:]}"
        return done.stdout

    def _create_key(self, name: str, scopes: str) -> str:
        return self._chimera("keys", "create", "--name", name, "--scopes", scopes).strip().splitlines()[-1]

    def start(self) -> None:
        run_async(self._stack.prepare([]))
        for name in SERVICES:
            self._stack.start(name)
        run_async(self._stack.wait_ready(list(SERVICES)), timeout_s=180)
        self.keys = Keys(admin=self._create_key("console-admin", "ingest,read,admin"),
                         read=self._create_key("console-reader", "read"),
                         miner=self._create_key("console-miner", f"miner:{MINER}"))
        # An hour of history first, so charts have something to draw; then the same pool live.
        self._chimera("simulate", *_SIMULATION, "--speed", "fast", "--span", "1h", timeout_s=_BACKFILL_TIMEOUT_S)
        log = (self._stack.data / "simulator.log").open("ab")
        with log:
            self._simulator = subprocess.Popen(
                [sys.executable, "-m", "chimera.cli", "simulate", *_SIMULATION, "--speed", "realtime"],
                cwd=PROJECT_ROOT, env=self._stack.environment("ingest"), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_for_history()

    def _wait_for_history(self, timeout_s: float = 120.0) -> None:
        """Until the aggregator has folded the backfill: a pool hashrate over the last hour."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.api("/api/pool/stats?pool=main", self.keys.read)
            if stats["hashrate"]["1h"] > 0 and stats["active_workers"] > 0:
                return
            assert time.monotonic() < deadline, f"no pool figures after {timeout_s:.0f}s: {stats}"
            assert not self._stack.died(), f"died: {self._stack.died()}\n{self._stack.log_tail('aggregator')}"
            time.sleep(0.5)

    def restart_ingest(self) -> None:
        """Stop the ingest service and start it again on the same port (what an upgrade does)."""
        _stop_group(self._stack.processes["ingest"])
        self._stack.start("ingest")
        run_async(self._stack.wait_ready(["ingest"]), timeout_s=90)

    def close(self) -> None:
        """Stop the simulator and the services, drop the topics and the schema. Safe twice."""
        if self._simulator is not None:
            _stop_group(self._simulator)
            self._simulator = None
        if not self._closed:
            self._closed = True
            run_async(self._stack.close(), timeout_s=120)


@contextmanager
def running_console_stack(endpoints: Endpoints) -> Iterator[ConsoleStack]:
    stack = ConsoleStack(endpoints)
    try:
        stack.start()
        yield stack
    finally:
        stack.close()
