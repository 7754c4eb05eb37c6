"""`chimera channels rotate-secrets`: every channel's secrets sealed again under the first key.

Key rotation (docs/notifier.md): put the new key first in NOTIFIER_SECRET_KEYS,
restart, run this, then drop the old key. A channel no key opens is named on
stderr (exit 1); the others are re-sealed all the same, in one transaction.
"""

from __future__ import annotations

import argparse
import sys

from services.notifier.adapters.channel_store import ChannelStore
from services.notifier.adapters.secrets import SecretBox, SecretKeyError
from services.notifier.config import ChannelSettings
from shared.db.pool import create_pool

__all__ = ["run_channels_command"]


async def run_channels_command(settings: ChannelSettings, args: argparse.Namespace) -> int:
    del args  # one action so far: rotate-secrets
    try:
        box = SecretBox.from_settings(settings)
    except SecretKeyError as exc:
        print(f"chimera channels: {exc}", file=sys.stderr)
        return 2
    pool = await create_pool(settings)
    try:
        rotated, unreadable = await ChannelStore(pool, box).rotate_secrets()
    finally:
        await pool.close()
    print(f"re-sealed the secrets of {rotated} channel{'s' if rotated != 1 else ''} under the first key")
    for problem in unreadable:
        print(f"chimera channels: not re-sealed: {problem}", file=sys.stderr)
    return 1 if unreadable else 0
