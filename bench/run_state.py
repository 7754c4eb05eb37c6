"""A benchmark run's own topics and schemas, and their removal afterwards."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka.options import client_options
from shared.kafka.topics import topic_specs
from shared.settings import ServiceSettings


async def drop_run_state(settings: ServiceSettings, admin_conn: asyncpg.Connection, schemas: Iterable[str]) -> None:
    """Delete the run's topics (its prefix) and drop its schemas, then close `admin_conn`."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.delete_topics([spec.name for spec in topic_specs(settings)])
    finally:
        await admin.close()
    for schema in schemas:
        await admin_conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await admin_conn.close()
