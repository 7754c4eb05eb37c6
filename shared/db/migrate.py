"""Plain-SQL migrations: `migrations/NNNN_description.sql`, applied in order.

Applied files are recorded in `schema_migrations` with a checksum, each file
runs in its own transaction, and a session-level advisory lock keyed by the
schema makes concurrent runners (several services starting at once) queue up:
the first applies, the others then find nothing to do. Schemas do not block
each other.

Files in one directory must be applied strictly in version order; a pending
file older than the newest applied one is refused rather than run out of
order. Applied versions newer than every file (a newer release migrated the
database) are tolerated so an older service can still start.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.db.partitions import ensure_partitions
from shared.db.pool import connect
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<description>[a-z0-9][a-z0-9_]*)\.sql$")
# First key of the two-key advisory lock; the second is hashtext(schema).
LOCK_NAMESPACE = 614202000

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """Base class: the database cannot be brought up to date safely."""


class MigrationFileError(MigrationError):
    """A file in the migrations directory is unusable (bad name, duplicate version)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ChecksumMismatchError(MigrationError):
    """An already-applied migration file was edited after it ran."""

    def __init__(self, version: int, name: str, recorded: str, actual: str) -> None:
        self.version = version
        self.name = name
        self.recorded = recorded
        self.actual = actual
        super().__init__(
            f"migration {name} (version {version}) changed after it was applied: "
            f"recorded checksum {recorded[:12]}…, file now {actual[:12]}…; "
            "add a new migration instead of editing an applied one"
        )


class MissingMigrationError(MigrationError):
    """The database records a migration whose file no longer exists."""

    def __init__(self, version: int, name: str) -> None:
        self.version = version
        self.name = name
        super().__init__(f"migration {name} (version {version}) is applied but its file is missing")


class OutOfOrderMigrationError(MigrationError):
    """A pending file sorts before a migration that is already applied."""

    def __init__(self, version: int, name: str, latest_applied: int) -> None:
        self.version = version
        self.name = name
        self.latest_applied = latest_applied
        super().__init__(
            f"migration {name} (version {version}) is pending but version {latest_applied} "
            "is already applied; renumber it after the latest one"
        )


class MigrationFailedError(MigrationError):
    """PostgreSQL rejected a migration; it was rolled back."""

    def __init__(self, version: int, name: str, cause: Exception) -> None:
        self.version = version
        self.name = name
        self.cause = cause
        super().__init__(f"migration {name} (version {version}) failed: {cause}")


class NoSchemaError(MigrationError):
    """The connection's search_path names no existing schema."""

    def __init__(self, search_path: str) -> None:
        self.search_path = search_path
        super().__init__(f"search_path {search_path!r} names no existing schema")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the file name without .sql, e.g. "0001_functions"
    sql: str
    checksum: str


def checksum(sql: str) -> str:
    # Line endings are normalised so a checkout with CRLF does not look edited.
    return hashlib.sha256(sql.replace("\r\n", "\n").encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All `*.sql` files of `directory`, in version order."""
    by_version: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if match is None:
            raise MigrationFileError(path, "name must look like 0001_description.sql")
        version = int(match["version"])
        if version == 0:
            raise MigrationFileError(path, "versions start at 0001")
        if version in by_version:
            raise MigrationFileError(path, f"version {version} also used by {by_version[version].name}")
        sql = path.read_text(encoding="utf-8")
        by_version[version] = Migration(version, path.stem, sql, checksum(sql))
    return [by_version[v] for v in sorted(by_version)]


def _pending(migrations: list[Migration], applied: dict[int, asyncpg.Record]) -> list[Migration]:
    """Verify what already ran and return what is left, or raise why we cannot go on."""
    known = {m.version: m for m in migrations}
    newest_file = max(known, default=0)
    for version, row in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            if version < newest_file:
                raise MissingMigrationError(version, row["name"])
            log.warning("database has migration %s, newer than this release", row["name"])
        elif migration.checksum != row["checksum"]:
            raise ChecksumMismatchError(version, row["name"], row["checksum"], migration.checksum)
    latest_applied = max(applied, default=0)
    pending = [m for m in migrations if m.version not in applied]
    for migration in pending:
        if migration.version < latest_applied:
            raise OutOfOrderMigrationError(migration.version, migration.name, latest_applied)
    return pending


async def migrate(conn: asyncpg.Connection, *, directory: Path | None = None) -> list[str]:
    """Apply pending migrations in the connection's current schema.

    Returns the names applied, [] when already up to date. Waits for any other
    runner on the same schema to finish first.
    """
    migrations = load_migrations(directory or MIGRATIONS_DIR)
    schema: str | None = await conn.fetchval("SELECT current_schema()")
    if schema is None:
        raise NoSchemaError(await conn.fetchval("SHOW search_path"))

    await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", LOCK_NAMESPACE, schema)
    try:
        # Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can
        # still collide on the catalog's unique indexes.
        await conn.execute(_CREATE_VERSION_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        pending = _pending(migrations, {row["version"]: row for row in rows})
        applied: list[str] = []
        for migration in pending:
            await _apply(conn, migration)
            log.info("applied migration %s in schema %s", migration.name, schema)
            applied.append(migration.name)
        return applied
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", LOCK_NAMESPACE, schema)


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    try:
        async with conn.transaction():
            # No arguments: the simple query protocol runs a multi-statement file.
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationFailedError(migration.version, migration.name, exc) from exc


async def _ensure_schema(conn: asyncpg.Connection, schema: str) -> None:
    exists = await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema)
    if exists:
        return  # no CREATE privilege needed on the database in the usual case
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except (asyncpg.UniqueViolationError, asyncpg.DuplicateSchemaError):
        pass  # another runner created it between our check and our CREATE


async def migrate_database(settings: ServiceSettings) -> list[str]:
    """`chimera migrate`: create the schema if needed, migrate, then make partitions ahead."""
    conn = await connect(settings)
    try:
        # The settings validator restricts the schema name to [a-z0-9_], so quoting is enough.
        await _ensure_schema(conn, settings.database_schema)
        applied = await migrate(conn)
        await ensure_partitions(conn, days_ahead=settings.partitions_ahead_days)
        return applied
    finally:
        await conn.close()
