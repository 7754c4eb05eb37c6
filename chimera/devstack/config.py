"""Where the local development stack lives and which ports it takes.

Read once from the environment; every value has a default that suits a
developer's machine, so `chimera dev up` needs no configuration at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from chimera.services import SERVICES

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Prometheus, Alertmanager and the exporters (chimera/devstack/monitoring.py): name ->
# (the variable that moves its port, its port by default). Alertmanager is not on its usual
# 9093, which Kafka's controller has here.
MONITOR_PORTS: dict[str, tuple[str, int]] = {
    "postgres-exporter": ("CHIMERA_POSTGRES_EXPORTER_PORT", 9187),
    "node-exporter": ("CHIMERA_NODE_EXPORTER_PORT", 9100),
    "alertmanager": ("CHIMERA_ALERTMANAGER_PORT", 9095),
    "prometheus": ("CHIMERA_PROMETHEUS_PORT", 9090),
}


class DevStackError(Exception):
    """The local stack cannot start or stop; `hint` says what the user can do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.hint = hint
        super().__init__(f"{message}\n  -> {hint}" if hint else message)


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DevStackError(f"{name}={raw!r} is not an integer") from None


@dataclass(frozen=True)
class DevStackConfig:
    state_dir: Path
    kafka_port: int
    kafka_controller_port: int
    kafka_heap: str
    postgres_port: int
    postgres_database: str
    postgres_user: str
    kafka_pom: Path
    # Service name -> the port it serves on (the ingest's public API, the others' /metrics).
    service_ports: dict[str, int]
    # Monitoring part -> its port (MONITOR_PORTS).
    monitor_ports: dict[str, int]
    # Prometheus's scrape and evaluation interval here ("" = the configuration's own): a
    # test stack shortens it to see rates within seconds.
    prometheus_interval: str = ""

    @classmethod
    def from_env(cls) -> DevStackConfig:
        state = Path(os.environ.get("CHIMERA_STATE_DIR") or PROJECT_ROOT / ".chimera")
        return cls(
            state_dir=state.resolve(),
            kafka_port=_int_env("CHIMERA_KAFKA_PORT", 9092),
            kafka_controller_port=_int_env("CHIMERA_KAFKA_CONTROLLER_PORT", 9093),
            kafka_heap=os.environ.get("CHIMERA_KAFKA_HEAP", "1g"),
            postgres_port=_int_env("CHIMERA_PG_PORT", 5432),
            postgres_database="chimera",
            postgres_user="chimera",
            kafka_pom=PROJECT_ROOT / "deploy" / "kafka" / "pom.xml",
            service_ports={
                spec.name: _int_env(f"CHIMERA_{spec.name.upper()}_PORT", spec.default_port) for spec in SERVICES
            },
            monitor_ports={name: _int_env(variable, port) for name, (variable, port) in MONITOR_PORTS.items()},
            prometheus_interval=os.environ.get("CHIMERA_PROMETHEUS_INTERVAL", ""),
        )

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def postgres_dir(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """The background services' pid files."""
        return self.state_dir / "run"

    @property
    def endpoints_file(self) -> Path:
        return self.state_dir / "stack.env"
