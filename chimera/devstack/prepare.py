"""`chimera migrate` and `chimera topics` against a stack just started, before its services.

Run in this process with the settings the services will read (the caller's
environment under the stack's endpoints), so that a database schema or topic
prefix set there applies to both. Imported only when used: it pulls in
asyncpg and aiokafka, which `chimera dev status` should not pay for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from shared.db.migrate import migrate_database
from shared.kafka.topics import ensure_topics
from shared.settings import ServiceSettings, load


@dataclass(frozen=True)
class Prepared:
    applied_migrations: list[str]
    created_topics: list[str]


def migrate_and_create_topics(stack_env: Mapping[str, str]) -> Prepared:
    settings = load(ServiceSettings).model_copy(update={
        "kafka_bootstrap_servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        "database_url": stack_env["DATABASE_URL"],
    })

    async def both() -> Prepared:
        return Prepared(await migrate_database(settings), await ensure_topics(settings))

    return asyncio.run(both())
