"""The local stack as one unit: `up`, `ensure_up`, `down`, `status`.

`up` is everything, in the background: Kafka and PostgreSQL, the migrations
and topics, then the four services (chimera/devstack/services.py), then
Prometheus, Alertmanager and the PostgreSQL and host exporters
(chimera/devstack/monitoring.py), returning when each answers. `ensure_up` is Kafka and PostgreSQL alone, as
the tests need them. After a start the endpoints, and where the services
answer, are written to `<state>/stack.env` (shell syntax) so that make
targets, tests, the demo and people can find them.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet

from chimera.devstack import monitoring, services
from chimera.devstack.config import DevStackConfig, DevStackError
from chimera.devstack.kafka import KafkaNode
from chimera.devstack.postgres import PostgresNode

INFRA = ("kafka", "postgres")
# The local stack's channels deliver to receivers on this machine (the demo's, the tests').
LOCAL_NETWORKS = "127.0.0.0/8,::1"


@dataclass(frozen=True)
class PartStatus:
    name: str
    running: bool
    pid: int | None
    address: str
    # A service answered 200 on /readyz; Kafka and PostgreSQL: they answer at all.
    ready: bool


@dataclass(frozen=True)
class RunningStack:
    kafka_bootstrap_servers: str
    database_url: str
    notifier_secret_keys: str = ""

    def as_env(self) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "DATABASE_URL": self.database_url,
            "NOTIFIER_ALLOWED_NETWORKS": LOCAL_NETWORKS,
        }
        if self.notifier_secret_keys:
            env["NOTIFIER_SECRET_KEYS"] = self.notifier_secret_keys
        return env


def _notifier_key(state_dir: Path) -> str:
    """The stack's key for channel secrets, made once and kept with the stack's data (which the
    secrets it encrypts live in), so the API and the notifier of this stack agree on it."""
    path = state_dir / "notifier-secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
    return path.read_text().strip()


@contextmanager
def _exclusive(config: DevStackConfig) -> Iterator[None]:
    """Two `dev up`s at once (two terminals, parallel test workers) must not both start a broker."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with (config.state_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class UpReport:
    stack: RunningStack
    # The parts this call started; empty when everything was running already.
    started: list[str]
    applied_migrations: list[str]
    created_topics: list[str]
    parts: list[PartStatus]
    # Topics of killed test and benchmark runs, deleted when this call started the broker.
    dropped_topics: list[str] = field(default_factory=list)


def service_urls(config: DevStackConfig) -> dict[str, str]:
    """Where the services answer: the public API, and each one's /metrics."""
    found = {service.name: service.url for service in services.background_services(config)}
    # The ingest serves its /metrics on the public port (the stack gives it no METRICS_PORT).
    metrics = {f"CHIMERA_{name.upper()}_METRICS_URL": f"{url}/metrics" for name, url in found.items()}
    return {"CHIMERA_API_URL": found["ingest"], **metrics}


def _infra_up(config: DevStackConfig) -> RunningStack:
    postgres = PostgresNode(config).up()
    kafka = KafkaNode(config).up()
    if postgres.database_url is None:
        raise DevStackError("PostgreSQL reported running without a port")
    stack = RunningStack(kafka.bootstrap_servers, postgres.database_url, _notifier_key(config.state_dir))
    env = {**stack.as_env(), **service_urls(config)}
    config.endpoints_file.write_text("".join(f"export {key}={value}\n" for key, value in env.items()))
    return stack


def ensure_up(config: DevStackConfig | None = None) -> RunningStack:
    """Kafka and PostgreSQL (what the tests need), started if they are not running."""
    config = config or DevStackConfig.from_env()
    with _exclusive(config):
        return _infra_up(config)


def up(config: DevStackConfig | None = None, *, with_services: bool = True) -> UpReport:
    """The whole stack in the background, or with `with_services=False` Kafka and PostgreSQL
    with their migrations and topics. Starts only what does not run (a service that died is
    started again); returns once every part is ready. Not from inside an event loop."""
    from chimera.devstack.prepare import drop_leftover_topics, migrate_and_create_topics

    config = config or DevStackConfig.from_env()
    with _exclusive(config):
        before = {part.name for part in status(config) if part.running}
        stack = _infra_up(config)
        dropped = [] if "kafka" in before else drop_leftover_topics(stack.as_env())
        prepared = migrate_and_create_topics(stack.as_env())
        if with_services:
            env = {**stack.as_env(), "PROMETHEUS_URL": _monitor_url(config, "prometheus")}
            services.ensure_running(config, env)
            urls = service_urls(config)
            monitoring.start_monitoring(config, database_url=stack.database_url, ingest_url=urls["CHIMERA_API_URL"],
                                        service_ports=config.service_ports, make_key=lambda: ingest_key(env))
            with config.endpoints_file.open("a") as out:
                out.write(f"export PROMETHEUS_URL={env['PROMETHEUS_URL']}\n"
                          f"export ALERTMANAGER_URL={_monitor_url(config, 'alertmanager')}\n")
        parts = status(config)
    wanted = [part for part in parts if with_services or part.name in INFRA]
    return UpReport(stack, [part.name for part in wanted if part.name not in before],
                    prepared.applied_migrations, prepared.created_topics, parts, dropped)


def down(config: DevStackConfig | None = None) -> list[str]:
    """Stop everything: the services first (they flush to Kafka and PostgreSQL as they stop),
    then Kafka, then PostgreSQL. Returns the names of the parts that were running."""
    config = config or DevStackConfig.from_env()
    with _exclusive(config):
        kafka, postgres = KafkaNode(config), PostgresNode(config)
        running = (("kafka", kafka.status().running), ("postgres", postgres.status().running))
        infra = [name for name, was_running in running if was_running]
        stopped = monitoring.stop_monitoring(config) + services.stop_all(config)
        # Kafka before PostgreSQL: it has no dependency on PostgreSQL, but clients of both may.
        kafka.down()
        postgres.down()
        config.endpoints_file.unlink(missing_ok=True)
        return stopped + infra


def status(config: DevStackConfig | None = None) -> list[PartStatus]:
    """Each part of the stack, Kafka and PostgreSQL first, then the services in start order."""
    config = config or DevStackConfig.from_env()
    kafka = KafkaNode(config).status()
    postgres = PostgresNode(config).status()
    database = postgres.database_url or PostgresNode(config).database_url(config.postgres_port)
    parts = [
        PartStatus("kafka", kafka.running, kafka.pid, kafka.bootstrap_servers, kafka.running),
        PartStatus("postgres", postgres.running, postgres.pid, database, postgres.running),
    ]
    for service in services.background_services(config):
        state = service.status()
        parts.append(PartStatus(state.name, state.running, state.pid, state.url, state.ready))
    for part in monitoring.monitor_processes(config):
        pid = part.pid()
        parts.append(PartStatus(part.name, pid is not None, pid, part.url, pid is not None and part.ready()))
    return parts


def _monitor_url(config: DevStackConfig, name: str) -> str:
    return f"http://{monitoring.HOST}:{config.monitor_ports[name]}"


def ingest_key(env: Mapping[str, str]) -> str:
    """An `ingest` key for Alertmanager's posts to the notifier's webhook input."""
    done = subprocess.run([sys.executable, "-m", "chimera.cli", "keys", "create", "--scopes", "ingest",
                           "--name", "alertmanager"], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        raise DevStackError("making Alertmanager's API key failed", done.stderr.strip()[-500:])
    return done.stdout.strip().splitlines()[-1]
