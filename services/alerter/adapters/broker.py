"""The Kafka security settings every service shares, as faust's `broker_credentials`.

The services' own clients get them through shared/kafka/options.py; the faust
app needs the same in its own types, so an alerter on a SASL or TLS cluster
connects like the aggregator does.
"""

from __future__ import annotations

import faust

from shared.kafka.options import client_options
from shared.settings import ServiceSettings

__all__ = ["broker_credentials"]


def broker_credentials(settings: ServiceSettings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    options = client_options(settings)
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism, ssl_context=options.get("ssl_context"))
    if protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    return None
