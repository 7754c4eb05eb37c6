"""A benchmark run's own topics and schemas, and their removal afterwards."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka.options import client_options
from shared.kafka.topics import topic_specs
from shared.settings import ServiceSettings


async def drop_run_state(settings: ServiceSettings, admin_conn: asyncpg.Connection, schemas: Iterable[str]) -> None:
    """Delete the run's topics (every topic with its prefix: the catalogue's and any a
    framework made, such as faust's) and drop its schemas, then close `admin_conn`."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        prefix = settings.kafka_topic_prefix
        names = {spec.name for spec in topic_specs(settings)}
        if prefix:
            names |= {t for t in await admin.list_topics() if t.startswith(prefix)}
        existing = set(await admin.list_topics())
        await admin.delete_topics(sorted(names & existing))
    finally:
        await admin.close()
    for schema in schemas:
        await admin_conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await admin_conn.close()
