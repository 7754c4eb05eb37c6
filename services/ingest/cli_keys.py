"""`chimera keys create|list|revoke`: API keys from the command line.

Talks to PostgreSQL directly (DATABASE_URL, DATABASE_SCHEMA), so keys can be
made before the service runs. `create` prints the key as its last line,
once: only its hash is stored. `--scopes` is ingest, read and admin in any
combination, or `miner:<name>` alone (a key that reads one miner only).
"""

from __future__ import annotations

import argparse
import sys
import uuid

from services.ingest.adapters.keys import ApiKeyStore, InvalidKeySpec
from services.ingest.domain.keys import ApiKeyRecord, InvalidScopes, parse_grant
from shared.db.pool import connect
from shared.settings import ServiceSettings


def _when(record: ApiKeyRecord) -> str:
    if record.revoked_at is not None:
        return f"revoked {record.revoked_at:%Y-%m-%d %H:%M}"
    used = f"{record.last_used_at:%Y-%m-%d %H:%M}" if record.last_used_at else "never"
    return f"last used {used}"


def _describe(record: ApiKeyRecord) -> str:
    scopes = ",".join(record.grant.names())
    limit = f"{record.rate_limit_per_second:g}/s" if record.rate_limit_per_second else "default"
    return (f"{record.id}  {record.key_prefix or '':<12}  {record.name}  [{scopes}]  "
            f"rate {limit}  created {record.created_at:%Y-%m-%d %H:%M}  {_when(record)}")


async def run_keys_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    if args.action == "create":
        try:
            # Checked before connecting, so a bad --scopes fails fast even without a database.
            grant = parse_grant(args.scopes)
        except InvalidScopes as exc:
            print(f"chimera keys: --scopes: {exc}", file=sys.stderr)
            return 2
        if args.rate_limit is not None and not args.rate_limit > 0:
            print("chimera keys: --rate-limit must be a positive number", file=sys.stderr)
            return 2
    key_id: uuid.UUID | None = None
    if args.action == "revoke":
        try:
            key_id = uuid.UUID(args.id)
        except ValueError:
            print(f"chimera keys: {args.id!r} is not a key id (a UUID)", file=sys.stderr)
            return 2

    conn = await connect(settings)
    try:
        store = ApiKeyStore(conn)
        if args.action == "create":
            try:
                record, plaintext = await store.create(
                    args.name, grant.names(), rate_limit_per_second=args.rate_limit
                )
            except InvalidKeySpec as exc:
                print(f"chimera keys: {exc}", file=sys.stderr)
                return 2
            print(_describe(record))
            print("# the key (shown once, only its hash is stored):")
            print(plaintext)
            return 0
        if args.action == "list":
            records = await store.list()
            for record in records:
                print(_describe(record))
            if not records:
                print("no API keys")
            return 0
        assert key_id is not None
        if await store.revoke(key_id):
            print(f"revoked {key_id} (services stop accepting it within seconds)")
            return 0
        print(f"chimera keys: no active key with id {key_id}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
