"""The project's services as child processes, for `chimera demo`.

Each service runs as `python -m services.<name>` with the caller's
environment; `stop()` sends SIGTERM (the services shut down gracefully on
it) and waits, then kills what did not exit.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
from pathlib import Path

# In start order: the API first, so the pool has somewhere to send events.
SERVICE_MODULES = ("services.ingest", "services.aggregator", "services.alerter", "services.notifier")
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
