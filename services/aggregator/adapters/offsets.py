"""`aggregator_offsets`: input positions stored with the figures (see migration 0006).

When a member takes partitions it makes sure every one has a row (starting at
the broker's oldest offset when none) and reads them. Claiming and moving them
happen inside the batch statement (store.py): a member whose stored offset
moved under it lost the partition and must not write for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import asyncpg

from ..consume.ports import StoredPosition

__all__ = ["ensure"]


_ENSURE: Final = """
INSERT INTO aggregator_offsets (consumer_group, topic, partition, next_offset)
SELECT $1, u.topic, u.partition, u.start
FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(topic, partition, start)
ON CONFLICT (consumer_group, topic, partition) DO NOTHING
"""

_READ: Final = """
SELECT o.topic, o.partition, o.next_offset, o.last_record_ts_ms, o.watermark_ms
FROM aggregator_offsets o
JOIN unnest($2::text[], $3::int[]) AS u(topic, partition)
  ON o.topic = u.topic AND o.partition = u.partition
WHERE o.consumer_group = $1
"""

async def ensure(
    conn: asyncpg.Connection, group: str, starts: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], StoredPosition]:
    """Rows for every (topic, partition) of `starts` (created at the given offset if
    missing), as stored."""
    keys = sorted(starts)
    topics = [t for t, _ in keys]
    partitions = [p for _, p in keys]
    await conn.execute(_ENSURE, group, topics, partitions, [starts[k] for k in keys])
    rows = await conn.fetch(_READ, group, topics, partitions)
    return {
        (r["topic"], r["partition"]): StoredPosition(
            r["next_offset"], r["last_record_ts_ms"], r["watermark_ms"]
        )
        for r in rows
    }
