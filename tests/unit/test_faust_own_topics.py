"""The faust apps' own topics, created before their workers start (shared/kafka/faust_app.own_topics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.kafka.faust_app import make_app, own_topics
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_internal_topics_and_compacted_changelogs_with_their_partitions(tmp_path: Path) -> None:
    settings = ServiceSettings(kafka_topic_prefix="t1.", kafka_topic_partitions=4)
    app = make_app(settings, app_id="notifier", data_dir=tmp_path, session_timeout_s=10)
    routed = app.topic("t1.chimera.notifier-groups", partitions=4, internal=True)
    app.topic("t1.chimera.alerts")  # the contract's: ensure_topics makes it anyway
    app.agent(routed, name="groups")(lambda stream: stream)
    app.Table("groups", default=None, partitions=4)
    specs = {spec.name: spec for spec in own_topics(app, 4)}
    assert set(specs) == {"t1.chimera.notifier-groups", "t1.notifier-groups-changelog"}
    assert specs["t1.chimera.notifier-groups"].partitions == 4
    assert specs["t1.notifier-groups-changelog"].config == {"cleanup.policy": "compact"}


@pytest.mark.parametrize("replication", [1, 3])
def test_topics_faust_makes_itself_are_as_replicated_as_ours(tmp_path: Path, replication: int) -> None:
    settings = ServiceSettings(kafka_replication_factor=replication)
    app = make_app(settings, app_id="alerter", data_dir=tmp_path, session_timeout_s=10)
    assert app.conf.topic_replication_factor == replication
