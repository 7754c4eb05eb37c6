"""Fixtures of the output tests (snapshots, exporter, roll-ups, stats liveness): a migrated schema's pool.

Imported by the test modules that use them (not a conftest, so other aggregator
test modules in this package stay unaffected).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
