"""Settings every service shares, read once from the environment at start-up.

Each service subclasses `ServiceSettings` with its own fields; `load()` turns
a pydantic validation failure into a `ConfigError` that names the environment
variables at fault, so a bad deployment stops at once with a readable reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.hashrate import DEFAULT_MULTIPLIER

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
# The producer implementations (shared/kafka/producer_choice.py); the ingest's setting picks one.
KafkaProducerImpl = Literal["aiokafka", "aiokafka-batch", "confluent"]
PostgresSslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

DEFAULT_DATABASE_URL = "postgresql://chimera@127.0.0.1:5432/chimera"


class ConfigError(Exception):
    """The environment does not describe a runnable service."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "; ".join(f"{name}: {reason}" for name, reason in problems)
        super().__init__(f"invalid configuration: {lines}")


class ServiceSettings(BaseSettings):
    """Connection and shared behaviour settings. Env names are the field names upper-cased."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
    # Prepended to every topic name: lets tests (or tenants) share one broker.
    kafka_topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$", max_length=100)
    kafka_topic_partitions: int = Field(default=12, ge=1, le=10_000)
    kafka_replication_factor: int = Field(default=1, ge=1, le=32)

    # PostgreSQL
    database_url: str = DEFAULT_DATABASE_URL
    database_sslmode: PostgresSslMode | None = None
    database_sslrootcert: Path | None = None
    database_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    database_pool_min_size: int = Field(default=1, ge=0, le=100)
    database_pool_max_size: int = Field(default=10, ge=1, le=1000)

    # Time-series retention: partitions wholly older than this are dropped.
    retention_metrics_days: int = Field(default=30, ge=1)
    retention_performance_metrics_days: int = Field(default=30, ge=1)
    retention_miner_metrics_days: int = Field(default=14, ge=1)
    retention_pool_metrics_days: int = Field(default=90, ge=1)
    # Roll-ups of the minute tables (the history API reads them for long ranges).
    retention_miner_metrics_hourly_days: int = Field(default=365, ge=1)
    retention_pool_metrics_hourly_days: int = Field(default=365, ge=1)
    retention_miner_metrics_daily_days: int = Field(default=5 * 365, ge=1)
    retention_pool_metrics_daily_days: int = Field(default=5 * 365, ge=1)
    partitions_ahead_days: int = Field(default=7, ge=1, le=366)
    # The notifier's delivery log (not partitioned): finished deliveries with their
    # attempts, and resolved alerts' records, are deleted past this by `chimera retention`.
    retention_notifications_days: int = Field(default=90, ge=1)

    # Contract section 2: hashes per unit of difficulty; 2^32 for SHA-256d pools.
    hashrate_multiplier: float = Field(default=DEFAULT_MULTIPLIER, gt=0)

    prometheus_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// or postgres://")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _sasl_complete(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                name
                for name, value in (
                    ("kafka_sasl_mechanism", self.kafka_sasl_mechanism),
                    ("kafka_sasl_username", self.kafka_sasl_username),
                    ("kafka_sasl_password", self.kafka_sasl_password),
                )
                if value is None
            ]
            if missing:
                raise ValueError(
                    f"{', '.join(n.upper() for n in missing)} required when "
                    f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
                )
        if self.database_pool_min_size > self.database_pool_max_size:
            raise ValueError("DATABASE_POOL_MIN_SIZE must not exceed DATABASE_POOL_MAX_SIZE")
        return self

    def retention_days(self) -> dict[str, int]:
        """Retention per partitioned time-series table."""
        return {
            "metrics": self.retention_metrics_days,
            "performance_metrics": self.retention_performance_metrics_days,
            "miner_metrics": self.retention_miner_metrics_days,
            "pool_metrics": self.retention_pool_metrics_days,
            "miner_metrics_hourly": self.retention_miner_metrics_hourly_days,
            "pool_metrics_hourly": self.retention_pool_metrics_hourly_days,
            "miner_metrics_daily": self.retention_miner_metrics_daily_days,
            "pool_metrics_daily": self.retention_pool_metrics_daily_days,
        }


S = TypeVar("S", bound=ServiceSettings)


def load(settings_class: type[S], **overrides: object) -> S:
    """Read settings once; raise ConfigError naming each bad variable."""
    try:
        return settings_class(**overrides)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"])
            problems.append((location.upper() or settings_class.__name__, error["msg"]))
        raise ConfigError(problems) from exc
