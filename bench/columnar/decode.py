"""Record values -> share columns: the service's decoding (services/aggregator/consume/columnar_decode.py),
shares only (the bench feeds share records)."""

from __future__ import annotations

from collections.abc import Sequence

from services.aggregator.consume.columnar_decode import STATUS_CODES, ShareColumns
from services.aggregator.consume.columnar_decode import decode_columns as _decode_batch
from shared.kafka.consumer import Record

__all__ = ["STATUS_CODES", "ShareColumns", "decode_columns"]


def decode_columns(records: Sequence[Record], wall_ms: int) -> ShareColumns:
    """The batch's valid shares as columns, in record order (dead letters left out)."""
    return _decode_batch(records, wall_ms).events.columns
