"""The topic catalogue, and creating it on a broker.

Every topic the system uses is listed here as data (`topic_specs`), so the
CLI, the services and the tests agree on names, partition counts and
retention. Names carry `settings.kafka_topic_prefix`, which lets tests (or
tenants) share one broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from shared.kafka.options import KafkaClientError, client_options, is_retriable
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

_HOUR_MS = 60 * 60 * 1000
_DAY_MS = 24 * _HOUR_MS


class Topic:
    """Base topic names, before the prefix. The `pool.*` ones are public (docs/contract.md section 1)."""

    SHARES = "pool.shares"
    BLOCKS = "pool.blocks"
    MINERS = "pool.miners"
    # Custom metrics written through the REST API.
    METRICS = "pool.metrics"
    # Records that failed to decode or validate, kept for inspection.
    DEADLETTER = "chimera.deadletter"
    # Aggregator -> alerter window figures: only the latest matter.
    SNAPSHOTS = "chimera.snapshots"
    # Alerter -> notifier alert state changes.
    ALERTS = "chimera.alerts"
    # Notifications the notifier gave up on after its last attempt, kept for inspection.
    NOTIFICATIONS_DEAD = "chimera.notifications.deadletter"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


class TopicError(KafkaClientError):
    """Topics could not be created. `failures` maps topic name to (error code, broker message)."""

    def __init__(
        self,
        message: str,
        *,
        retriable: bool,
        cause: BaseException | None = None,
        failures: dict[str, tuple[int, str | None]] | None = None,
    ) -> None:
        super().__init__(message, retriable=retriable, cause=cause)
        self.failures = failures or {}


def topic_name(settings: ServiceSettings, base: str) -> str:
    """The real topic name for a base name such as `Topic.SHARES`."""
    return f"{settings.kafka_topic_prefix}{base}"


def topic_specs(settings: ServiceSettings) -> list[TopicSpec]:
    partitions = settings.kafka_topic_partitions
    common: dict[str, str] = {}
    replication = settings.kafka_replication_factor
    if replication >= 3:
        # With acks=all this is what makes an acknowledged record survive one
        # broker loss; with fewer replicas it would block writes instead.
        common["min.insync.replicas"] = "2"

    def spec(base: str, **config: str) -> TopicSpec:
        return TopicSpec(topic_name(settings, base), partitions, {**common, **config})

    return [
        spec(Topic.SHARES),
        spec(Topic.BLOCKS),
        spec(Topic.MINERS),
        spec(Topic.METRICS),
        spec(Topic.DEADLETTER, **{"retention.ms": str(14 * _DAY_MS)}),
        spec(Topic.SNAPSHOTS, **{"retention.ms": str(_HOUR_MS)}),
        spec(Topic.ALERTS, **{"retention.ms": str(7 * _DAY_MS)}),
        spec(Topic.NOTIFICATIONS_DEAD, **{"retention.ms": str(14 * _DAY_MS)}),
    ]


async def ensure_topics(settings: ServiceSettings, *, extra: Sequence[TopicSpec] = (),
                        timeout_ms: int = 30_000) -> list[str]:
    """Create the catalogue's missing topics (and `extra`, a service's own); return the names
    this call created.

    Asks the broker to create every topic and treats TOPIC_ALREADY_EXISTS as
    success, which also covers another process creating the same topic at the
    same moment. Existing topics are left as they are (partition counts and
    configs are not altered). Returns once the broker serves every catalogue
    topic, so producers and consumers started next find them; raises
    TopicError (retriable) if that takes longer than `timeout_ms`.
    """
    specs = [*topic_specs(settings), *extra]
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=timeout_ms)
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            await admin.start()
            created = await _create(admin, specs, settings.kafka_replication_factor, timeout_ms)
            await _wait_until_served(admin, [s.name for s in specs])
    except TimeoutError as exc:
        raise TopicError(
            f"topics not ready within {timeout_ms} ms", retriable=True, cause=exc
        ) from exc
    except KafkaError as exc:
        raise TopicError(
            f"cannot create topics: {exc}", retriable=is_retriable(exc), cause=exc
        ) from exc
    finally:
        await admin.close()
    if created:
        log.info("created Kafka topics: %s", ", ".join(created))
    return created


async def _create(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], replication: int, timeout_ms: int
) -> list[str]:
    response = await admin.create_topics(
        [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=replication,
                topic_configs=s.config,
            )
            for s in specs
        ],
        timeout_ms=timeout_ms,
    )
    created: list[str] = []
    failures: dict[str, tuple[int, str | None]] = {}
    # Every response version lists (topic, error_code, ...) per topic.
    for topic, error_code, *rest in response.topic_errors:
        if error_code == 0:
            created.append(topic)
        elif error_code != TopicAlreadyExistsError.errno:
            failures[topic] = (error_code, rest[0] if rest else None)
    if failures:
        errors = [for_code(code) for code, _ in failures.values()]
        detail = "; ".join(
            f"{topic}: {for_code(code).__name__} {message or ''}".strip()
            for topic, (code, message) in failures.items()
        )
        raise TopicError(
            f"cannot create topics: {detail}",
            retriable=all(error.retriable for error in errors),
            failures=failures,
        )
    order = {s.name: i for i, s in enumerate(specs)}
    return sorted(created, key=order.__getitem__)


async def _wait_until_served(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Wait until the broker's metadata lists every topic with a leader for each partition.

    CreateTopics answers once the controller has committed the topic; the
    broker's metadata cache catches up a moment later. Until then clients see
    UNKNOWN_TOPIC_OR_PARTITION or partitions without leaders, so returning
    earlier would hand the caller topics it cannot use yet.
    """
    delay = 0.02
    while True:
        described = await admin.describe_topics(names)
        if len(described) == len(names) and all(_served(t) for t in described):
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


def _served(topic: dict[str, Any]) -> bool:
    partitions = topic["partitions"]
    leaders = all(p["leader"] >= 0 for p in partitions)
    return topic["error_code"] == 0 and bool(partitions) and leaders
