"""Key rotation as docs/notifier.md gives it: a new key first, `chimera channels rotate-secrets`,
the old key dropped; the channels' secrets still open, and only under the new key."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from services.notifier.adapters.channel_store import ChannelStore
from services.notifier.adapters.secrets import SecretBox
from shared.db.pool import create_pool
from tests.conftest import Endpoints
from tests.integration.notifier.service import add_channel, notifier_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _rotate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chimera.cli", "channels", "rotate-secrets"], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


async def test_rotation_reseals_every_channel_under_the_new_key(endpoints: Endpoints, topic_prefix: str,
                                                               db_schema: str, tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = await notifier_settings(endpoints, topic_prefix, db_schema, tmp_path, notifier_secret_keys=old)
    pool: asyncpg.Pool = await create_pool(settings)
    try:
        await add_channel(pool, settings, "ops", "webhook", {"url": "https://hooks.example.com/x",
                                                             "hmac_secret": "s1"})
        await add_channel(pool, settings, "tg", "telegram", {"bot_token": "123:abc", "chat_id": "-100"})
        await add_channel(pool, settings, "plain", "email", {"to": "a@example.com", "from": "b@example.com",
                                                             "smarthost": "mx.example.com"})
        env = {"DATABASE_URL": endpoints.database_url, "DATABASE_SCHEMA": db_schema,
               "NOTIFIER_SECRET_KEYS": f"{new},{old}"}
        done = await asyncio.to_thread(_rotate, env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "re-sealed the secrets of 2 channels under the first key"

        only_new = ChannelStore(pool, SecretBox([new]))
        channels = {c.name: c for c in await only_new.channels()}
        assert channels["ops"].secrets == {"url": "https://hooks.example.com/x", "hmac_secret": "s1"}
        assert channels["tg"].secrets == {"bot_token": "123:abc"}
        assert all(c.secrets_error is None for c in channels.values())
        only_old = {c.name: c for c in await ChannelStore(pool, SecretBox([old])).channels()}
        assert only_old["ops"].secrets_error is not None and only_old["ops"].secrets == {}

        refused = await asyncio.to_thread(_rotate, {**env, "NOTIFIER_SECRET_KEYS": Fernet.generate_key().decode()})
        assert refused.returncode == 1
        assert "channel" in refused.stderr and "(ops)" in refused.stderr and "(tg)" in refused.stderr
    finally:
        await pool.close()
