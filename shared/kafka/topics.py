"""The topic catalogue, and creating it on a broker.

Every topic the system uses is listed here as data (`topic_specs`), so the
CLI, the services and the tests agree on names, partition counts and
retention. Names carry `settings.kafka_topic_prefix`, which lets tests (or
tenants) share one broker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from shared.kafka.options import KafkaClientError, client_options, is_retriable
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

_HOUR_MS = 60 * 60 * 1000
_DAY_MS = 24 * _HOUR_MS


class Topic:
    """Base topic names, before the prefix. The `pool.*` ones are public (CONTRACT.md section 1)."""

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
    ]


async def ensure_topics(settings: ServiceSettings, *, timeout_ms: int = 30_000) -> list[str]:
    """Create the catalogue's missing topics; return the names this call created.

    Asks the broker to create every topic and treats TOPIC_ALREADY_EXISTS as
    success, which also covers another process creating the same topic at the
    same moment. Existing topics are left as they are (partition counts and
    configs are not altered).
    """
    specs = topic_specs(settings)
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=timeout_ms)
    try:
        await admin.start()
        response = await admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=settings.kafka_replication_factor,
                    topic_configs=s.config,
                )
                for s in specs
            ],
            timeout_ms=timeout_ms,
        )
    except KafkaError as exc:
        raise TopicError(
            f"cannot create topics: {exc}", retriable=is_retriable(exc), cause=exc
        ) from exc
    finally:
        await admin.close()

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
    if created:
        log.info("created Kafka topics: %s", ", ".join(created))
    order = {s.name: i for i, s in enumerate(specs)}
    return sorted(created, key=order.__getitem__)
