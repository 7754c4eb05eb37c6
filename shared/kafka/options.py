"""How every Kafka client of the project connects, and how its failures are classed.

`client_options` turns `ServiceSettings` into the keyword arguments that
aiokafka's producer, consumer and admin client all accept, so security setup
lives in one place. `KafkaClientError` is the base of the errors this package
raises: each carries the underlying cause and whether retrying can help.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from aiokafka.helpers import create_ssl_context

from shared.settings import ServiceSettings

_TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})


class KafkaClientError(Exception):
    """A Kafka operation failed. `retriable` says whether the same call may succeed later."""

    def __init__(
        self, message: str, *, retriable: bool, cause: BaseException | None = None
    ) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.cause = cause


def is_retriable(exc: BaseException) -> bool:
    """Whether a failure is transient (broker away, leader moving) rather than a fault of ours.

    aiokafka marks most transient broker errors with `retriable = True`, but not
    `KafkaTimeoutError`, and a timeout is the typical symptom of an unreachable
    broker, so timeouts count as retriable here too.
    """
    if isinstance(exc, (KafkaConnectionError, KafkaTimeoutError, asyncio.TimeoutError)):
        return True
    if isinstance(exc, KafkaError):
        return bool(exc.retriable)
    return False


def _ssl_context(settings: ServiceSettings) -> ssl.SSLContext:
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )
    # create_ssl_context always turns hostname checks on; brokers reached by IP
    # or through a load balancer may need them off (the chain is still verified).
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments common to AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": [
            server.strip()
            for server in settings.kafka_bootstrap_servers.split(",")
            if server.strip()
        ],
        "security_protocol": protocol,
    }
    if protocol.startswith("SASL_"):
        # Settings validation guarantees all three are present for SASL_*.
        # aiokafka takes the SCRAM credentials through the sasl_plain_* names too.
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    if protocol in _TLS_PROTOCOLS:
        options["ssl_context"] = _ssl_context(settings)
    return options
