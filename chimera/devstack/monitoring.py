"""Prometheus, Alertmanager and the two exporters beside the local stack's services.

`chimera dev up` starts them after the services (so Prometheus's first scrape
finds its targets up) from Debian's binaries (chimera/devstack/monitoring_bins.py),
each detached in a session of its own, logged to `<state>/logs/<name>.log`,
pid-filed in `<state>/run/<name>.pid`, its data under `<state>/<name>/`.

The configurations are the project's own, rendered for this stack:
- `deploy/prometheus/prometheus.yml` with every target's default port moved to
  the port this stack gives that part (CHIMERA_*_PORT), its rule files by
  absolute path;
- `deploy/alertmanager/alertmanager.yml` with the notifier's webhook input at
  this stack's ingest URL and the API key Alertmanager presents there (an
  `ingest` key made once for it and kept in `<state>/alertmanager/api-key`).
Alertmanager listens on 9095 by default: Kafka's controller has 9093, and
clustering (9094) is switched off for a single node.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from chimera.devstack.config import MONITOR_PORTS, PROJECT_ROOT, DevStackConfig, DevStackError
from chimera.devstack.detached import launch, stack_pid
from chimera.devstack.monitoring_bins import MonitoringBinaries, ensure_monitoring_binaries
from chimera.devstack.processes import (
    answers_200,
    pid_alive,
    port_free,
    read_pid,
    signal_group,
    tail,
    wait_until,
)
from chimera.services import SERVICES

__all__ = ["MONITORS", "MonitorProcess", "monitor_processes", "render_alertmanager_config",
           "render_prometheus_config", "start_monitoring", "stop_monitoring"]

HOST: Final = "127.0.0.1"
PROMETHEUS_CONFIG: Final = PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG: Final = PROJECT_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
READY_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 15.0

# The ports the project's configuration files name for each part (their defaults).
DEFAULT_PORTS: Final = {"prometheus": 9090, "alertmanager": 9093, "postgres-exporter": 9187, "node-exporter": 9100}


@dataclass(frozen=True)
class MonitorSpec:
    name: str
    ready_path: str


# In start order (config.MONITOR_PORTS has their ports): Prometheus last, so that its
# first scrape finds every target up.
MONITORS: Final = (
    MonitorSpec("postgres-exporter", "/metrics"),
    MonitorSpec("node-exporter", "/metrics"),
    MonitorSpec("alertmanager", "/-/ready"),
    MonitorSpec("prometheus", "/-/ready"),
)


class MonitorProcess:
    """One binary in the background: started, found again by pid file and environment, stopped."""

    def __init__(self, spec: MonitorSpec, config: DevStackConfig) -> None:
        self.spec = spec
        self.name = spec.name
        self.port = config.monitor_ports[spec.name]
        self.url = f"http://{HOST}:{self.port}"
        self.data_dir = config.state_dir / spec.name
        self.log_path = config.logs_dir / f"{spec.name}.log"
        self._pid_file = config.run_dir / f"{spec.name}.pid"
        self._state_dir = config.state_dir

    def pid(self) -> int | None:
        return stack_pid(self._pid_file, self._state_dir)

    def alive(self) -> bool:
        """The process last started runs. Not `pid()`: while it execs, its /proc entries can
        read empty for a moment, and a part just started must not be taken for dead."""
        pid = read_pid(self._pid_file)
        return pid is not None and pid_alive(pid)

    def ready(self) -> bool:
        return answers_200(f"{self.url}{self.spec.ready_path}")

    def start(self, command: Sequence[str], env: Mapping[str, str]) -> int:
        if not port_free(self.port, HOST):
            raise DevStackError(f"port {self.port} is taken, so {self.name} cannot listen on it",
                                f"stop what holds it, or choose another port with {MONITOR_PORTS[self.name][0]}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return launch(command, cwd=self.data_dir, env={**os.environ, **env}, state_dir=self._state_dir,
                      log_path=self.log_path, pid_file=self._pid_file, banner=" ".join(command))

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        pid = self.pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        signal_group(pid, signal.SIGTERM)
        if not wait_until(lambda: not pid_alive(pid), timeout_s):
            signal_group(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), 10)
        self._pid_file.unlink(missing_ok=True)
        return True


def monitor_processes(config: DevStackConfig) -> list[MonitorProcess]:
    return [MonitorProcess(spec, config) for spec in MONITORS]


def render_prometheus_config(source: Mapping[str, Any], ports: Mapping[int, int], rules_dir: Path,
                             interval: str = "") -> dict[str, Any]:
    """The project's prometheus.yml for one stack: each `host:port` target whose port is a
    default of the configuration moved to that part's port here (`ports`: default -> actual),
    on 127.0.0.1; rule files by absolute path; with `interval`, that scrape and evaluation
    interval. Pure, so a test can check it."""
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(source)))  # a deep copy
    if interval:
        config.setdefault("global", {}).update(scrape_interval=interval, evaluation_interval=interval,
                                               scrape_timeout=interval)

    def moved(target: str) -> str:
        _, _, port = target.rpartition(":")
        if not port.isdigit() or int(port) not in ports:
            return target
        return f"{HOST}:{ports[int(port)]}"

    for job in config.get("scrape_configs") or []:
        for static in job.get("static_configs") or []:
            static["targets"] = [moved(t) for t in static.get("targets") or []]
    for manager in (config.get("alerting") or {}).get("alertmanagers") or []:
        for static in manager.get("static_configs") or []:
            static["targets"] = [moved(t) for t in static.get("targets") or []]
    config["rule_files"] = [str((rules_dir / name).resolve()) for name in config.get("rule_files") or []]
    return config


def render_alertmanager_config(source: Mapping[str, Any], webhook_url: str, key_file: Path) -> dict[str, Any]:
    """The project's alertmanager.yml for one stack: every webhook receiver posts to this
    stack's notifier input with the key in `key_file`."""
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(source)))
    for receiver in config.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            hook["url"] = webhook_url
            hook.setdefault("http_config", {})["authorization"] = {"type": "Bearer",
                                                                   "credentials_file": str(key_file)}
    return config


def _commands(binaries: MonitoringBinaries, parts: Mapping[str, MonitorProcess], prometheus_yml: Path,
              alertmanager_yml: Path) -> dict[str, list[str]]:
    def listen(name: str) -> str:
        return f"--web.listen-address={HOST}:{parts[name].port}"

    return {
        "postgres-exporter": [str(binaries.postgres_exporter), listen("postgres-exporter")],
        "node-exporter": [str(binaries.node_exporter), listen("node-exporter")],
        "alertmanager": [str(binaries.alertmanager), f"--config.file={alertmanager_yml}", listen("alertmanager"),
                         f"--storage.path={parts['alertmanager'].data_dir / 'data'}", "--cluster.listen-address="],
        "prometheus": [str(binaries.prometheus), f"--config.file={prometheus_yml}", listen("prometheus"),
                       f"--storage.tsdb.path={parts['prometheus'].data_dir / 'data'}",
                       "--storage.tsdb.retention.time=7d", "--web.enable-lifecycle"],
    }


def start_monitoring(config: DevStackConfig, *, database_url: str, ingest_url: str,
                     service_ports: Mapping[str, int], make_key: Callable[[], str]) -> list[str]:
    """Start what does not run and wait until each answers; returns the names started.
    `make_key` makes the `ingest` API key Alertmanager uses (called once per state folder)."""
    binaries = ensure_monitoring_binaries()
    parts = {p.name: p for p in monitor_processes(config)}
    key_file = parts["alertmanager"].data_dir / "api-key"
    if not key_file.exists():
        key = make_key()  # first: a failure must not leave an empty key file behind
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key)
    defaults = {spec.default_port: service_ports[spec.name] for spec in SERVICES}
    defaults |= {DEFAULT_PORTS[name]: part.port for name, part in parts.items()}
    prometheus_yml = parts["prometheus"].data_dir / "prometheus.yml"
    prometheus_yml.parent.mkdir(parents=True, exist_ok=True)
    rendered = render_prometheus_config(yaml.safe_load(PROMETHEUS_CONFIG.read_text()), defaults,
                                        PROMETHEUS_CONFIG.parent, config.prometheus_interval)
    prometheus_yml.write_text(yaml.safe_dump(rendered, sort_keys=False))
    alertmanager_yml = parts["alertmanager"].data_dir / "alertmanager.yml"
    alertmanager_yml.write_text(yaml.safe_dump(render_alertmanager_config(
        yaml.safe_load(ALERTMANAGER_CONFIG.read_text()), f"{ingest_url}/api/alertmanager/webhook", key_file),
        sort_keys=False))
    commands = _commands(binaries, parts, prometheus_yml, alertmanager_yml)
    # postgres_exporter reads its connection from the environment, in libpq's URL form.
    env = {"postgres-exporter": {"DATA_SOURCE_NAME": _libpq_url(database_url)}}
    started = []
    for name, part in parts.items():
        if part.pid() is None:
            part.start(commands[name], env.get(name, {}))
            started.append(name)
    _wait_ready(list(parts.values()))
    return started


def _libpq_url(database_url: str) -> str:
    url = database_url.replace("postgresql+asyncpg://", "postgresql://")
    return url if "sslmode=" in url else url + ("&" if "?" in url else "?") + "sslmode=disable"


def _wait_ready(parts: list[MonitorProcess]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = list(parts)
    while waiting:
        for part in list(waiting):
            if not part.alive():
                raise DevStackError(f"{part.name} exited while starting; last lines of {part.log_path}:\n"
                                    + tail(part.log_path))
            if part.ready():
                waiting.remove(part)
        if waiting and time.monotonic() > deadline:
            raise DevStackError(f"not ready within {READY_TIMEOUT_S:.0f}s: "
                                + ", ".join(p.name for p in waiting), f"see {waiting[0].log_path}")
        if waiting:
            time.sleep(0.25)


def stop_monitoring(config: DevStackConfig, names: Sequence[str] | None = None) -> list[str]:
    """Prometheus first (it stops scraping), then the rest (or only `names`); the names of
    those that ran."""
    parts = [part for part in reversed(monitor_processes(config)) if names is None or part.name in names]
    return [part.name for part in parts if part.stop()]
