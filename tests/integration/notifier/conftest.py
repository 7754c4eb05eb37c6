"""The public API with the notifier's plugin mounted, served for real on the real broker and database.

The plugin reads its own settings from the environment, as it does in
production: each test sets them (a fresh Fernet key, the networks channels
may reach) before the app starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet

from services.ingest.adapters.keys import ApiKeyStore
from shared.db.migrate import migrate_database
from tests.conftest import Endpoints
from tests.integration.ingest.conftest import Api, make_settings, serve

PLUGINS = ["services.alerter.api:make_plugin", "services.notifier.api:make_plugin"]
LOOPBACK = "127.0.0.0/8,::1"


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


@pytest.fixture
async def api(endpoints: Endpoints, topic_prefix: str, db_schema: str,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NotifierApi]:
    """Channels may reach loopback (the receivers of the tests)."""
    async with notifier_api(endpoints, topic_prefix, db_schema, monkeypatch) as running:
        yield running


@pytest.fixture
async def public_api(endpoints: Endpoints, topic_prefix: str, db_schema: str,
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[NotifierApi]:
    """NOTIFIER_ALLOWED_NETWORKS empty: channels may reach the public internet only."""
    async with notifier_api(endpoints, topic_prefix, db_schema, monkeypatch, allowed_networks="") as running:
        yield running
