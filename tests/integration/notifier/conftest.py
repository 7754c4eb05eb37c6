"""The public API with the notifier's plugin mounted, served for real on the real broker and database.

The plugin reads its own settings from the environment, as it does in
production, once, when the app starts: a server's settings (a fresh Fernet
key, the networks channels may reach) are set before it starts and stay set
while it runs.

Setting a server up (a schema, the migrations, the app's start) costs far
more than most of these tests, so a test module shares one: `module_schema`
is the module's migrated schema, `shared_api` the module's server on it.
Tests that depend on what the tables hold take `api`, the same server with
the notifier's tables emptied first (ids start at 1 again), so each sees
only what it writes itself, whatever ran before. `shared_api` as it is (no
emptying) is for the cases that depend on no table's contents and leave
nothing another case reads: the tables of bad bodies and queries, scopes,
the API document. A test that needs a server of its own (other settings,
its own topics) starts one with `notifier_api`, on `module_schema` when the
migrations are all it needs of a database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet

from services.ingest.adapters.keys import ApiKeyStore
from shared.db.migrate import migrate_database
from tests.conftest import Endpoints, own_schema, unique_name
from tests.integration.ingest.conftest import Api, make_settings, serve

PLUGINS = ["services.alerter.api:make_plugin", "services.notifier.api:make_plugin"]
LOOPBACK = "127.0.0.0/8,::1"

# Every table the notifier's API writes or reads (API keys aside: each test makes its own).
NOTIFIER_TABLES = ("alert_channels", "notification_deliveries", "notifications", "silences", "notifier_alerts")


@dataclass
class NotifierApi:
    api: Api
    secret_key: str  # NOTIFIER_SECRET_KEYS of this server

    async def headers(self, *scopes: str) -> dict[str, str]:
        return await self.api.headers(*scopes)

    async def miner_headers(self, miner: str) -> dict[str, str]:
        """A key limited to one miner (`miner:<name>`)."""
        _, plaintext = await ApiKeyStore(self.api.container.pool).create(f"key of {miner}", [f"miner:{miner}"])
        return {"Authorization": f"Bearer {plaintext}"}


@contextlib.asynccontextmanager
async def notifier_api(endpoints: Endpoints, topic_prefix: str, db_schema: str, monkeypatch: pytest.MonkeyPatch,
                       *, allowed_networks: str = LOOPBACK, setup: bool = True,
                       **overrides: Any) -> AsyncIterator[NotifierApi]:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("NOTIFIER_SECRET_KEYS", key)
    monkeypatch.setenv("NOTIFIER_ALLOWED_NETWORKS", allowed_networks)
    settings = make_settings(endpoints, topic_prefix, db_schema, api_plugins=PLUGINS, **overrides)
    if not setup:  # no broker to make topics on (an outage test): the database still needs its tables
        await migrate_database(settings)
    async for api in serve(settings, setup=setup):
        yield NotifierApi(api, key)


async def empty_notifier_tables(pool: asyncpg.Pool) -> None:
    """As a freshly migrated schema has them: no rows, ids from 1."""
    await pool.execute(f"TRUNCATE {', '.join(NOTIFIER_TABLES)} RESTART IDENTITY")


@pytest.fixture(scope="module")
async def module_schema(endpoints: Endpoints) -> AsyncIterator[str]:
    """The module's own schema, migrated (servers on it find nothing left to migrate)."""
    async with own_schema(endpoints) as schema:
        await migrate_database(make_settings(endpoints, unique_name("t") + ".", schema))
        yield schema


@pytest.fixture(scope="module")
async def shared_api(endpoints: Endpoints, module_schema: str) -> AsyncIterator[NotifierApi]:
    """The module's server (its own topic prefix; channels may reach loopback, the receivers of the tests)."""
    with pytest.MonkeyPatch.context() as monkeypatch:  # the module's environment, while its server runs
        async with notifier_api(endpoints, unique_name("t") + ".", module_schema, monkeypatch) as running:
            yield running


@pytest.fixture
async def api(shared_api: NotifierApi) -> NotifierApi:
    """The module's server with the notifier's tables emptied: the test sees only what it writes."""
    await empty_notifier_tables(shared_api.api.container.pool)
    return shared_api


@pytest.fixture
async def public_api(endpoints: Endpoints, topic_prefix: str, module_schema: str,
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NotifierApi]:
    """A server of the test's own, NOTIFIER_ALLOWED_NETWORKS empty: channels may reach the public internet only.
    On the module's schema, its notifier tables emptied."""
    async with notifier_api(endpoints, topic_prefix, module_schema, monkeypatch, allowed_networks="") as running:
        await empty_notifier_tables(running.api.container.pool)
        yield running
