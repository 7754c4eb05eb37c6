"""PostgreSQL access: connections, migrations and time-series partitions."""

from shared.db.migrate import (
    ChecksumMismatchError,
    MigrationError,
    MigrationFailedError,
    MigrationFileError,
    MissingMigrationError,
    NoSchemaError,
    OutOfOrderMigrationError,
    migrate,
    migrate_database,
)
from shared.db.partitions import (
    PARTITIONED_TABLES,
    InvalidRetentionError,
    PartitionError,
    SchemaNotMigratedError,
    apply_retention,
    ensure_partitions,
    run_retention,
)
from shared.db.pool import DatabaseConfigError, connect, connect_options, create_pool

__all__ = [
    "PARTITIONED_TABLES",
    "ChecksumMismatchError",
    "DatabaseConfigError",
    "InvalidRetentionError",
    "MigrationError",
    "MigrationFailedError",
    "MigrationFileError",
    "MissingMigrationError",
    "NoSchemaError",
    "OutOfOrderMigrationError",
    "PartitionError",
    "SchemaNotMigratedError",
    "apply_retention",
    "connect",
    "connect_options",
    "create_pool",
    "ensure_partitions",
    "migrate",
    "migrate_database",
    "run_retention",
]
