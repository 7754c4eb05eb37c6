"""The notifier against the real broker and database: settings, a running service, alert records.

Not a conftest: the modules that run the notifier import what they use.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from cryptography.fernet import Fernet

from services.notifier.adapters.channel_store import Channel, ChannelSpec, ChannelStore
from services.notifier.adapters.secrets import SecretBox
from services.notifier.bootstrap import Notifier, bootstrap
from services.notifier.config import NotifierSettings
from services.notifier.domain.channel_types import check_config, split_secrets
from shared.db.migrate import migrate_database
from shared.kafka.producer import EventProducer, OutgoingRecord
from shared.kafka.topics import Topic, ensure_topics, topic_name
from tests.conftest import Endpoints

PARTITIONS = 3


async def notifier_settings(endpoints: Endpoints, topic_prefix: str, db_schema: str, data_dir: Path,
                            **overrides: Any) -> NotifierSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": endpoints.kafka_bootstrap_servers, "kafka_topic_prefix": topic_prefix,
        "kafka_topic_partitions": PARTITIONS, "database_url": endpoints.database_url,
        "database_schema": db_schema, "database_pool_max_size": 4, "metrics_port": 0,
        "notifier_tick_s": 0.05, "notifier_reload_s": 0.2, "notifier_backoff_initial_s": 0.05,
        "notifier_backoff_max_s": 0.2, "notifier_allowed_networks": ["127.0.0.0/8", "::1"],
        "notifier_secret_keys": Fernet.generate_key().decode(), "notifier_data_dir": data_dir,
        "log_level": "WARNING",
    }
    values.update(overrides)
    settings = NotifierSettings(**values)
    await migrate_database(settings)
    await ensure_topics(settings)
    return settings


@contextlib.asynccontextmanager
async def running(settings: NotifierSettings) -> AsyncIterator[Notifier]:
    service = await bootstrap(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def add_channel(pool: asyncpg.Pool, settings: NotifierSettings, name: str, channel_type: str,
                      config: dict[str, Any], **fields: Any) -> Channel:
    checked = check_config(channel_type, config, settings.allowed_networks)
    public, secret = split_secrets(channel_type, checked)
    spec = ChannelSpec(name=name, type=channel_type, config=public, secrets=secret, **fields)
    return await ChannelStore(pool, SecretBox.from_settings(settings)).create(spec)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_record(fingerprint: str, status: str = "firing", *, labels: dict[str, str] | None = None,
                 starts_at: datetime | None = None, name: str = "worker offline", severity: str = "warning",
                 alert_id: int | None = None) -> dict[str, Any]:
    """A chimera.alerts value as the alerter writes it (docs/alerter.md)."""
    start = starts_at or datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    firing = status == "firing"
    return {
        "fingerprint": fingerprint, "status": status, "starts_at": iso(start),
        "ends_at": None if firing else iso(start + timedelta(minutes=5)),
        "fired_at": iso(start) if firing else None,
        "labels": {"alertname": name, "severity": severity, **(labels or {})},
        "annotations": {"summary": f"{name} {fingerprint}"}, "severity": severity, "name": name,
        "value": 0.0, "threshold": 0.0, "rule_id": None, "alert_id": alert_id, "reason": None,
    }


async def publish(settings: NotifierSettings, *records: dict[str, Any], raw: tuple[bytes, ...] = ()) -> None:
    topic = topic_name(settings, Topic.ALERTS)
    producer = EventProducer(settings)
    await producer.start()
    try:
        await producer.send_batch(
            [OutgoingRecord(topic, r["fingerprint"].encode(), orjson.dumps(r)) for r in records]
            + [OutgoingRecord(topic, b"bad", value) for value in raw])
    finally:
        await producer.stop()


async def attempts(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT n.*, d.idempotency_key, d.status AS delivery_status FROM notifications n"
                            " JOIN notification_deliveries d ON d.id = n.delivery_id ORDER BY n.id")
    return [dict(r) for r in rows]
