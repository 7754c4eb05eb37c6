"""client_options per security protocol, and the retriable classification."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)

from shared.kafka.options import client_options, is_retriable
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A self-signed CA, client certificate and key, as PEM files."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "client.pem", directory / "client.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=chimera-test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, cert, key


def settings(**overrides: object) -> ServiceSettings:
    return ServiceSettings(**overrides)  # type: ignore[arg-type]


def test_plaintext_has_no_security_extras() -> None:
    options = client_options(settings(kafka_bootstrap_servers="a:9092, b:9093"))
    assert options == {"bootstrap_servers": ["a:9092", "b:9093"], "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_passes_credentials_for_every_mechanism(mechanism: str) -> None:
    options = client_options(
        settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism=mechanism,
            kafka_sasl_username="pool",
            kafka_sasl_password="s3cret",
        )
    )
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "pool"
    assert options["sasl_plain_password"] == "s3cret"  # unwrapped from SecretStr
    assert "ssl_context" not in options


def test_ssl_builds_a_verifying_context_with_client_certificate(
    tls_files: tuple[Path, Path, Path],
) -> None:
    ca, cert, key = tls_files
    options = client_options(
        settings(
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=ca,
            kafka_ssl_certfile=cert,
            kafka_ssl_keyfile=key,
        )
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert any(c.get("subject") for c in context.get_ca_certs())
    assert "sasl_mechanism" not in options


def test_ssl_hostname_check_can_be_turned_off(tls_files: tuple[Path, Path, Path]) -> None:
    ca, _, _ = tls_files
    options = client_options(
        settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca, kafka_ssl_check_hostname=False)
    )
    context = options["ssl_context"]
    assert context.check_hostname is False
    # The chain is still verified: only the name check is off.
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_sasl_ssl_has_both_credentials_and_context(tls_files: tuple[Path, Path, Path]) -> None:
    ca, _, _ = tls_files
    options = client_options(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="pool",
            kafka_sasl_password="s3cret",
            kafka_ssl_cafile=ca,
        )
    )
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_ssl_with_missing_ca_file_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        client_options(
            settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "none.pem")
        )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (KafkaConnectionError("refused"), True),
        (KafkaTimeoutError(), True),
        (TimeoutError(), True),
        (NotLeaderForPartitionError(), True),
        (MessageSizeTooLargeError(), False),
        (TopicAuthorizationFailedError(), False),
        (ValueError("bug"), False),
    ],
)
def test_retriable_follows_error_classes(exc: BaseException, expected: bool) -> None:
    assert is_retriable(exc) is expected
