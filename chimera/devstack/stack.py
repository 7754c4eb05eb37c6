"""The local stack as one unit: `ensure_up`, `down`, `status`.

After a successful start the endpoints are written to `<state>/stack.env`
(shell syntax) so that make targets, tests and people can find them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from chimera.devstack.config import DevStackConfig, DevStackError
from chimera.devstack.kafka import KafkaNode
from chimera.devstack.postgres import PostgresNode

# The local stack's channels deliver to receivers on this machine (the demo's, the tests').
LOCAL_NETWORKS = "127.0.0.0/8,::1"


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


def ensure_up(config: DevStackConfig | None = None) -> RunningStack:
    config = config or DevStackConfig.from_env()
    with _exclusive(config):
        postgres = PostgresNode(config).up()
        kafka = KafkaNode(config).up()
        if postgres.database_url is None:
            raise DevStackError("PostgreSQL reported running without a port")
        stack = RunningStack(kafka.bootstrap_servers, postgres.database_url, _notifier_key(config.state_dir))
        config.endpoints_file.write_text(
            "".join(f"export {key}={value}\n" for key, value in stack.as_env().items())
        )
        return stack


def down(config: DevStackConfig | None = None) -> None:
    config = config or DevStackConfig.from_env()
    with _exclusive(config):
        # Kafka first: it has no dependency on PostgreSQL, but clients of both may.
        KafkaNode(config).down()
        PostgresNode(config).down()
        config.endpoints_file.unlink(missing_ok=True)


def status(config: DevStackConfig | None = None) -> list[tuple[str, bool, str]]:
    """(part, running, detail) for each part of the stack."""
    config = config or DevStackConfig.from_env()
    kafka = KafkaNode(config).status()
    postgres = PostgresNode(config).status()
    return [
        ("kafka", kafka.running,
         f"{kafka.bootstrap_servers} (pid {kafka.pid})" if kafka.running else "stopped"),
        ("postgres", postgres.running, postgres.database_url or "stopped"),
    ]
