"""The deduplicators' journals in PostgreSQL (`aggregator_event_ids`, migration 0008).

Each batch's journals go in with the batch, in its transaction (store.py), and
journals that fell out of the dedup horizon go out with it; a new owner of a
partition reads back the horizon's journals, in order, and replays them into
fresh deduplicators (domain/dedup.py says why that rebuilds the same state).
Ids travel as int64 arrays, little-endian, in bytea: 16 bytes an event.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable
from typing import Final

import asyncpg

from ..domain.dedup import IdJournal

__all__ = ["DELETE_SQL", "INSERT_SQL", "JOURNAL_MARGIN_MS", "journal_columns", "load_journals"]

# Journals are kept (and read back) down to the newest watermark minus the horizon
# minus this: ids a deduplicator took in its last bucket before the horizon still
# count, and a bucket is 10 s of event time.
JOURNAL_MARGIN_MS: Final = 60_000

INSERT_SQL: Final = """
INSERT INTO aggregator_event_ids (consumer_group, partition, kind, watermark_ms, hashes, ts_ms)
SELECT $1, * FROM unnest($2::integer[], $3::text[], $4::bigint[], $5::bytea[], $6::bytea[])
"""

DELETE_SQL: Final = """
DELETE FROM aggregator_event_ids e
USING unnest($2::integer[], $3::text[], $4::bigint[]) AS old(partition, kind, before_ms)
WHERE e.consumer_group = $1 AND e.partition = old.partition AND e.kind = old.kind
  AND e.watermark_ms < old.before_ms
"""

_SELECT: Final = """
WITH newest AS (
    SELECT kind, max(watermark_ms) AS watermark_ms FROM aggregator_event_ids
    WHERE consumer_group = $1 AND partition = $2 GROUP BY kind
)
SELECT e.kind, e.watermark_ms, e.hashes, e.ts_ms
FROM aggregator_event_ids e JOIN newest n ON n.kind = e.kind
WHERE e.consumer_group = $1 AND e.partition = $2 AND e.watermark_ms >= n.watermark_ms - $3
ORDER BY e.kind, e.seq
"""

_SWAP: Final = sys.byteorder != "little"


def _to_bytes(values: array[int]) -> bytes:
    if _SWAP:
        values = array("q", values)
        values.byteswap()
    return values.tobytes()


def _from_bytes(raw: bytes) -> array[int]:
    values = array("q")
    values.frombytes(raw)
    if _SWAP:
        values.byteswap()
    return values


def journal_columns(
    journals: Iterable[tuple[int, str, IdJournal]], horizon_ms: int
) -> tuple[tuple[list, ...], tuple[list, ...]]:  # type: ignore[type-arg]
    """(INSERT_SQL columns, DELETE_SQL columns) for (partition, kind, journal) triples."""
    partitions, kinds, watermarks, hashes, times = [], [], [], [], []
    for partition, kind, journal in sorted(journals, key=lambda t: (t[0], t[1])):
        partitions.append(partition)
        kinds.append(kind)
        watermarks.append(journal.watermark_ms)
        hashes.append(_to_bytes(journal.hashes))
        times.append(_to_bytes(journal.ts_ms))
    before = [w - horizon_ms - JOURNAL_MARGIN_MS for w in watermarks]
    return (partitions, kinds, watermarks, hashes, times), (partitions, kinds, before)


async def load_journals(
    conn: asyncpg.Connection, group: str, partition: int, horizon_ms: int
) -> dict[str, list[IdJournal]]:
    """Per event type, the partition's journals of the last horizon, oldest first."""
    out: dict[str, list[IdJournal]] = {}
    for r in await conn.fetch(_SELECT, group, partition, horizon_ms + JOURNAL_MARGIN_MS):
        journal = IdJournal(watermark_ms=r["watermark_ms"])
        journal.hashes = _from_bytes(r["hashes"])
        journal.ts_ms = _from_bytes(r["ts_ms"])
        out.setdefault(r["kind"], []).append(journal)
    return out
