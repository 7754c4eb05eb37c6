"""The project's services: which there are and what port setting each listens on, and
the services as child processes, for `chimera demo`.

Each service runs as `python -m services.<name>` with the caller's
environment; `stop()` sends SIGTERM (the services shut down gracefully on
it) and waits, then kills what did not exit. `chimera dev up` runs the same
services detached (chimera/devstack/services.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    # The setting it serves HTTP on (each service reads its own; two children must not share one).
    port_variable: str
    default_port: int
    # Where a faust worker keeps its files; one per stack, or two stacks' workers would share one.
    data_dir_variable: str | None = None

    @property
    def module(self) -> str:
        return f"services.{self.name}"


# In start order: the API first, so the pool has somewhere to send events.
SERVICES = (
    ServiceSpec("ingest", "HTTP_PORT", 8000),
    ServiceSpec("aggregator", "METRICS_PORT", 9101),
    ServiceSpec("alerter", "METRICS_PORT", 9102, "ALERTER_DATA_DIR"),
    ServiceSpec("notifier", "METRICS_PORT", 9103, "NOTIFIER_DATA_DIR"),
)
SERVICE_MODULES = tuple(spec.module for spec in SERVICES)
# Port settings a child must not inherit from the caller: it gets its own, or none (the
# ingest given METRICS_PORT would move /metrics off its public port).
PORT_VARIABLES = ("HTTP_PORT", "METRICS_PORT")
STOP_TIMEOUT_S = 30.0


def runnable_services() -> list[str]:
    """The services that exist so far (a service is runnable once it has a __main__)."""
    return [m for m in SERVICE_MODULES if importlib.util.find_spec(f"{m}.__main__") is not None]


class ServiceProcess:
    def __init__(self, module: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.module = module
        self.name = module.rsplit(".", 1)[-1]
        self.log_path = log_dir / f"{self.name}.log"
        self._env = {**os.environ, **(env or {})}
        self._process: asyncio.subprocess.Process | None = None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    async def start(self) -> None:
        if self._process is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, stdout=log, stderr=log,
                stdin=asyncio.subprocess.DEVNULL, env=self._env,
                # Own process group: Ctrl-C in the terminal reaches only the demo,
                # which then stops the services in order.
                start_new_session=True,
            )

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
