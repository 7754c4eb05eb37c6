"""The topic catalogue as data: names, prefix, partitions, configs."""

from __future__ import annotations

import pytest

from shared.events import TOPIC_BY_TYPE
from shared.kafka.topics import Topic, topic_name, topic_specs
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit

DAY_MS = 24 * 3600 * 1000


def test_catalogue_names_every_topic_with_the_prefix() -> None:
    settings = ServiceSettings(kafka_topic_prefix="acme.")
    names = [spec.name for spec in topic_specs(settings)]
    assert names == [
        "acme.pool.shares",
        "acme.pool.blocks",
        "acme.pool.miners",
        "acme.pool.metrics",
        "acme.chimera.deadletter",
        "acme.chimera.snapshots",
        "acme.chimera.alerts",
        "acme.chimera.notifications.deadletter",
    ]


def test_no_prefix_gives_the_contract_names() -> None:
    names = {spec.name for spec in topic_specs(ServiceSettings())}
    # The public topics of docs/contract.md section 1, which the events codec routes to.
    assert set(TOPIC_BY_TYPE.values()) <= names
    assert topic_name(ServiceSettings(), Topic.SHARES) == "pool.shares"


def test_partitions_follow_settings() -> None:
    assert {spec.partitions for spec in topic_specs(ServiceSettings())} == {12}
    few = ServiceSettings(kafka_topic_partitions=3)
    assert {spec.partitions for spec in topic_specs(few)} == {3}


def test_retention_per_topic() -> None:
    by_name = {spec.name: spec.config for spec in topic_specs(ServiceSettings())}
    assert by_name[Topic.DEADLETTER]["retention.ms"] == str(14 * DAY_MS)
    assert by_name[Topic.SNAPSHOTS]["retention.ms"] == str(3600 * 1000)
    assert by_name[Topic.ALERTS]["retention.ms"] == str(7 * DAY_MS)
    assert by_name[Topic.NOTIFICATIONS_DEAD]["retention.ms"] == str(14 * DAY_MS)
    # Event topics keep the broker's default retention.
    for base in (Topic.SHARES, Topic.BLOCKS, Topic.MINERS, Topic.METRICS):
        assert "retention.ms" not in by_name[base]


def test_min_insync_replicas_only_when_replicated_enough() -> None:
    single = topic_specs(ServiceSettings(kafka_replication_factor=1))
    assert all("min.insync.replicas" not in spec.config for spec in single)
    triple = topic_specs(ServiceSettings(kafka_replication_factor=3))
    assert all(spec.config["min.insync.replicas"] == "2" for spec in triple)


def test_config_values_are_strings_as_the_protocol_wants() -> None:
    for spec in topic_specs(ServiceSettings(kafka_replication_factor=3)):
        assert all(isinstance(v, str) for v in spec.config.values())
