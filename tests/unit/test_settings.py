"""Settings: read once from the environment, fail fast naming the variable at fault."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.aggregator.config import AggregatorSettings
from services.alerter.config import AlerterSettings
from services.ingest.config import IngestSettings
from services.notifier.config import NotifierSettings
from shared.settings import ConfigError, ServiceSettings, load

pytestmark = pytest.mark.unit

_OURS = (
    "KAFKA_", "DATABASE_", "RETENTION_", "PARTITIONS_", "PROMETHEUS_", "LOG_LEVEL", "HTTP_",
    "METRICS_", "DEDUP_", "HASHRATE_", "MAX_",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(_OURS):
            monkeypatch.delenv(name)


def test_defaults_match_the_contract() -> None:
    settings = load(ServiceSettings)
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka_topic_partitions == 12
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.prometheus_url is None


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9093")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/x")
    monkeypatch.setenv("DATABASE_SSLMODE", "verify-full")
    monkeypatch.setenv("HTTP_PORT", "8080")
    settings = load(IngestSettings)
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9093"
    assert settings.database_sslmode == "verify-full"
    assert settings.http_port == 8080


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KAFKA_TOPIC_PARTITIONS", "twelve"),
        ("KAFKA_TOPIC_PARTITIONS", "0"),
        ("KAFKA_BOOTSTRAP_SERVERS", "no-port-here"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("KAFKA_SASL_MECHANISM", "GSSAPI"),
        ("KAFKA_TOPIC_PREFIX", "has space"),
        ("DATABASE_URL", "mysql://db/x"),
        ("DATABASE_SSLMODE", "sometimes"),
        ("DATABASE_SCHEMA", "Robert'); DROP TABLE"),
        ("RETENTION_MINER_METRICS_DAYS", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("HTTP_PORT", "70000"),
    ],
)
def test_bad_value_is_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load(IngestSettings)
    assert [name for name, _ in caught.value.problems] == [variable]
    assert variable in str(caught.value)


def test_sasl_needs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    with pytest.raises(ConfigError) as caught:
        load(ServiceSettings)
    message = str(caught.value)
    assert "KAFKA_SASL_USERNAME" in message and "KAFKA_SASL_PASSWORD" in message
    assert "KAFKA_SASL_MECHANISM" not in message


def test_sasl_complete_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "pool")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    settings = load(ServiceSettings)
    assert settings.kafka_sasl_password is not None
    assert "s3cret" not in repr(settings)  # secrets never reach logs via repr


def test_pool_sizes_are_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_POOL_MIN_SIZE", "20")
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "5")
    with pytest.raises(ConfigError, match="DATABASE_POOL_MIN_SIZE"):
        load(ServiceSettings)


@pytest.mark.parametrize(
    ("settings_class", "port"),
    [(IngestSettings, 8000), (AggregatorSettings, 9101), (AlerterSettings, 9102), (NotifierSettings, 9103)],
)
def test_each_service_has_its_own_port(settings_class: type[ServiceSettings], port: int) -> None:
    settings = load(settings_class)
    assert getattr(settings, "http_port", None) == port or getattr(settings, "metrics_port", None) == port


def test_settings_are_read_once_and_frozen() -> None:
    settings = load(ServiceSettings)
    with pytest.raises(ValidationError):
        settings.kafka_topic_partitions = 3  # type: ignore[misc]
