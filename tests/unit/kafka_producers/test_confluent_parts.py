"""The pure parts of the confluent-kafka producer (skipped where confluent-kafka is not installed)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from pydantic import SecretStr

from shared.kafka.producer_choice import create_producer
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit

confluent = pytest.importorskip("confluent_kafka")


def test_librdkafka_options_carry_security() -> None:
    from shared.kafka.confluent_producer import librdkafka_options

    settings = ServiceSettings(
        kafka_bootstrap_servers="a:9093,b:9093", kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("p"), kafka_ssl_check_hostname=False,
    )
    assert librdkafka_options(settings) == {
        "bootstrap.servers": "a:9093,b:9093", "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u", "sasl.password": "p",
        "ssl.endpoint.identification.algorithm": "none",
    }
    assert librdkafka_options(ServiceSettings(kafka_bootstrap_servers="k:9092")) == {
        "bootstrap.servers": "k:9092", "security.protocol": "plaintext"}


def test_transient_errors() -> None:
    from confluent_kafka import KafkaError

    from shared.kafka.confluent_producer import is_transient

    assert is_transient(KafkaError(KafkaError._MSG_TIMED_OUT))
    assert is_transient(KafkaError(KafkaError._ALL_BROKERS_DOWN))
    assert is_transient(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION, retriable=True))
    assert not is_transient(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert not is_transient(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))


async def test_a_call_settles_on_its_last_report_from_another_thread() -> None:
    from confluent_kafka import KafkaError

    from shared.kafka.confluent_producer import _Call

    call = _Call(asyncio.get_running_loop(), 3)

    def reports() -> None:
        call.on_delivery(None, None)  # type: ignore[arg-type]
        call.on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), None)  # type: ignore[arg-type]
        assert not call.future.done()
        call.on_delivery(None, None)  # type: ignore[arg-type]

    thread = threading.Thread(target=reports)
    thread.start()
    thread.join()
    await asyncio.wait_for(call.future, 5)
    assert call.remaining == 0
    assert [e.code() for e in call.errors] == [KafkaError._MSG_TIMED_OUT]


def test_confluent_is_chosen_by_the_setting() -> None:
    from shared.kafka.confluent_producer import ConfluentEventProducer

    producer = create_producer(ServiceSettings(), "confluent", client_id="c")
    assert isinstance(producer, ConfluentEventProducer)
    assert producer._config["partitioner"] == "murmur2_random"
    assert producer._config["acks"] == "all" and producer._config["enable.idempotence"] is True
