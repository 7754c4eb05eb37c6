"""The four services in the background, for `chimera dev up`: detached, logged, pid-filed.

Each runs as `python -m services.<name>` in a session of its own (it outlives
`chimera dev up` and ignores the terminal's Ctrl-C), with stdout and stderr
appended to `<state>/logs/<name>.log` and its pid in `<state>/run/<name>.pid`.
Its environment is the caller's, the stack's endpoints over it, and its own
port; `CHIMERA_STATE_DIR` in it tells whose stack a process belongs to, so a
recycled pid, or the same service of another stack, is never taken for ours.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chimera.devstack.config import PROJECT_ROOT, DevStackConfig, DevStackError
from chimera.devstack.detached import launch, stack_pid
from chimera.devstack.processes import (
    answers_200,
    pid_alive,
    port_free,
    signal_group,
    tail,
    wait_until,
)
from chimera.services import PORT_VARIABLES, SERVICES, ServiceSpec

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
PROBE_TIMEOUT_S = 2.0
HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    url: str
    ready: bool

    @property
    def running(self) -> bool:
        return self.pid is not None


class BackgroundService:
    def __init__(self, spec: ServiceSpec, config: DevStackConfig) -> None:
        self.spec = spec
        self.name = spec.name
        self._config = config
        self.port = config.service_ports[spec.name]
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = config.logs_dir / f"{spec.name}.log"
        self._pid_file = config.run_dir / f"{spec.name}.pid"

    def pid(self) -> int | None:
        return stack_pid(self._pid_file, self._config.state_dir, command_has=f"-m {self.spec.module} ")

    def ready(self) -> bool:
        return answers_200(f"{self.url}/readyz", PROBE_TIMEOUT_S)

    def status(self) -> ServiceStatus:
        pid = self.pid()
        return ServiceStatus(self.name, pid, self.url, pid is not None and self.ready())

    def environment(self, stack_env: Mapping[str, str]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in PORT_VARIABLES}
        env.update(stack_env)
        env[self.spec.port_variable] = str(self.port)
        if self.spec.data_dir_variable is not None:
            env[self.spec.data_dir_variable] = str(self._config.state_dir / self.name)
        env["PYTHONUNBUFFERED"] = "1"  # a crash's last words reach the log
        return env

    def start(self, stack_env: Mapping[str, str]) -> int:
        if not port_free(self.port, HOST):
            raise DevStackError(
                f"port {self.port} is taken, so {self.name} cannot listen on it",
                f"stop what holds it (a `make demo` running, for one), or choose another port "
                f"with CHIMERA_{self.name.upper()}_PORT",
            )
        return launch([sys.executable, "-m", self.spec.module], cwd=PROJECT_ROOT, env=self.environment(stack_env),
                      state_dir=self._config.state_dir, log_path=self.log_path, pid_file=self._pid_file,
                      banner=f"starting {self.name} on {self.url}")

    def forget(self) -> None:
        self._pid_file.unlink(missing_ok=True)


def background_services(config: DevStackConfig) -> list[BackgroundService]:
    return [BackgroundService(spec, config) for spec in SERVICES]


def ensure_running(config: DevStackConfig, stack_env: Mapping[str, str],
                   timeout_s: float = READY_TIMEOUT_S) -> list[str]:
    """Start the services that are not running and wait until every one answers /readyz.
    Returns the names of those it started."""
    services = background_services(config)
    started = [service.name for service in services if service.pid() is None]
    for service in services:
        if service.name in started:
            service.start(stack_env)
    _wait_ready(services, timeout_s)
    return started


def _wait_ready(services: Sequence[BackgroundService], timeout_s: float) -> None:
    waiting = list(services)
    deadline = time.monotonic() + timeout_s
    while waiting:
        for service in list(waiting):
            if service.pid() is None:
                raise DevStackError(f"{service.name} exited while starting; last lines of {service.log_path}:\n"
                                    + tail(service.log_path))
            if service.ready():
                waiting.remove(service)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(service.name for service in waiting)
            raise DevStackError(
                f"not ready within {timeout_s:.0f}s: {names} (their /readyz did not answer 200)",
                "see " + ", ".join(str(service.log_path) for service in waiting),
            )
        if waiting:
            time.sleep(0.25)


def stop_all(config: DevStackConfig, timeout_s: float = STOP_TIMEOUT_S) -> list[str]:
    """SIGTERM to every running service at once (each stops gracefully: flushes, commits),
    SIGKILL to what outlives `timeout_s`. Returns the names of those it stopped."""
    running = [(service, pid) for service in background_services(config) if (pid := service.pid()) is not None]
    for _, pid in running:
        signal_group(pid, signal.SIGTERM)
    pids = [pid for _, pid in running]
    if not wait_until(lambda: not any(pid_alive(pid) for pid in pids), timeout_s):
        for pid in pids:
            if pid_alive(pid):
                signal_group(pid, signal.SIGKILL)
        wait_until(lambda: not any(pid_alive(pid) for pid in pids), 10)
    for service in background_services(config):
        service.forget()
    return [service.name for service, _ in running]
