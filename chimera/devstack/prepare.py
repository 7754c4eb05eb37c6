"""`chimera migrate` and `chimera topics` against a stack just started, before its services.

Run in this process with the settings the services will read (the caller's
environment under the stack's endpoints), so that a database schema or topic
prefix set there applies to both. Imported only when used: it pulls in
asyncpg and aiokafka, which `chimera dev status` should not pay for.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient

from shared.db.migrate import migrate_database
from shared.kafka.options import client_options
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


# The private topic prefixes of test runs (tests/conftest.py `topic_prefix`) and benchmark
# runs (bench/*: `bench<8 hex>.`, `bench_<8 hex>.`). A run deletes its topics when it ends;
# a killed one leaves them, and a dev broker collecting them for weeks died of too many
# open files (a few per partition).
LEFTOVER_TOPIC: Final = re.compile(r"(t[0-9a-f]{12}|bench_?[0-9a-f]{8})\.")


def leftover_topics(names: Iterable[str]) -> list[str]:
    return sorted(name for name in names if LEFTOVER_TOPIC.match(name))


def drop_leftover_topics(stack_env: Mapping[str, str]) -> list[str]:
    """Delete the topics killed test and benchmark runs left. Only for a broker this call
    just started: no run can be using its topics then."""
    settings = load(ServiceSettings).model_copy(update={
        "kafka_bootstrap_servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]})

    async def drop() -> list[str]:
        admin = AIOKafkaAdminClient(**client_options(settings))
        await admin.start()
        try:
            names = leftover_topics(await admin.list_topics())
            for start in range(0, len(names), 100):  # bounded requests, each within the admin timeout
                await admin.delete_topics(names[start:start + 100])
            return names
        finally:
            await admin.close()

    return asyncio.run(drop())
