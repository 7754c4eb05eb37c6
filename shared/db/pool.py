"""asyncpg connections and pools configured from `ServiceSettings`.

Every connection gets `search_path` set to the configured schema, so all SQL in
the project stays unqualified and one database can host many isolated schemas
(tests, tenants). JSON and JSONB come back as Python objects via orjson.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson

from shared.settings import ServiceSettings

# Modes in which libpq itself verifies the server against `sslrootcert`
# (`require` does too once a root certificate is given).
_VERIFYING_MODES = frozenset({"require", "verify-ca", "verify-full"})


class DatabaseConfigError(Exception):
    """A database setting cannot be turned into connection options."""

    def __init__(self, setting: str, reason: str) -> None:
        self.setting = setting
        self.reason = reason
        super().__init__(f"{setting.upper()}: {reason}")


def _ssl_context(mode: str, rootcert: str) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=rootcert)
    except (OSError, ssl.SSLError) as exc:
        raise DatabaseConfigError(
            "database_sslrootcert", f"cannot load {rootcert}: {exc}"
        ) from exc
    # verify-ca checks the chain only; hostname checking is what verify-full adds.
    context.check_hostname = mode == "verify-full"
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def connect_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments for `asyncpg.connect` / `asyncpg.create_pool`.

    `database_sslmode` goes through as the libpq-style string asyncpg accepts;
    with `database_sslrootcert` and a verifying mode we build the SSLContext
    ourselves so the root certificate is honoured. Unset sslmode leaves the
    choice to the URL (`?sslmode=`) or asyncpg's default (`prefer`); a root
    certificate then travels in the URL for that mode to use.
    """
    options: dict[str, Any] = {
        "dsn": settings.database_url,
        "server_settings": {"search_path": settings.database_schema},
    }
    mode = settings.database_sslmode
    rootcert = settings.database_sslrootcert
    if mode is not None:
        if rootcert is not None and mode in _VERIFYING_MODES:
            effective = "verify-ca" if mode == "require" else mode
            options["ssl"] = _ssl_context(effective, str(rootcert))
        else:
            options["ssl"] = mode
    elif rootcert is not None:
        # The mode may still come from the URL (`?sslmode=verify-full`): hand the
        # root certificate to asyncpg the same way so that mode can use it.
        options["dsn"] = _with_query_param(settings.database_url, "sslrootcert", str(rootcert))
    return options


def _with_query_param(url: str, key: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != key]
    query.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def init_connection(conn: asyncpg.Connection) -> None:
    """Register orjson codecs; services pass and receive dicts/lists for json(b)."""
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, schema="pg_catalog", encoder=_dumps, decoder=orjson.loads, format="text"
        )


async def connect(settings: ServiceSettings) -> asyncpg.Connection:
    """One connection (CLI commands, migrations, tests)."""
    conn: asyncpg.Connection = await asyncpg.connect(**connect_options(settings))
    try:
        await init_connection(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def create_pool(settings: ServiceSettings) -> asyncpg.Pool:
    """The pool a long-running service shares between its tasks."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        **connect_options(settings),
        min_size=settings.database_pool_min_size,
        max_size=settings.database_pool_max_size,
        init=init_connection,
    )
    return pool
