"""The shared Kafka security settings reach the faust app as its own credential types."""

from __future__ import annotations

import faust
import pytest

from services.alerter.config import AlerterSettings
from shared.kafka.faust_app import broker_credentials

pytestmark = pytest.mark.unit


def test_plaintext_needs_no_credentials() -> None:
    assert broker_credentials(AlerterSettings()) is None


def test_sasl_settings_become_sasl_credentials() -> None:
    settings = AlerterSettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512",
                               kafka_sasl_username="alerter", kafka_sasl_password="s3cret")
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("alerter", "s3cret")
    assert str(credentials.mechanism.value if hasattr(credentials.mechanism, "value") else credentials.mechanism) \
        == "SCRAM-SHA-512"


def test_tls_settings_become_ssl_credentials() -> None:
    credentials = broker_credentials(AlerterSettings(kafka_security_protocol="SSL"))
    assert isinstance(credentials, faust.SSLCredentials) and credentials.context is not None
