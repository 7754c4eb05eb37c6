"""One deduplicator per event type, behind the `Deduplicator` interface the model uses.

The domain's `Deduplicator` expires ids by the newest event time it has seen.
With one instance for all three topics, the sparse `pool.blocks` and
`pool.miners` partitions are consumed far ahead of the dense `pool.shares`
one whenever there is a backlog (one fetch returns hours of block events,
but only seconds of shares), and a block event hours ahead would expire every
share id at once: a retry split from its original by a batch boundary would
then be counted twice. A repeat of an event_id is always an event of the same
type, so each type gets its own ids and its own watermark; the outcome then
depends only on each topic's own order, as the replay guarantees require.

The model calls `fresh(shares)`, `fresh(blocks)` (whole lists of one type) and
`seen_before(...)` for miner events only; `remember` is for warm-up replays.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from shared.events import Event

from .domain.dedup import Deduplicator

__all__ = ["PerTypeDeduplicator"]

E = TypeVar("E")


class PerTypeDeduplicator(Deduplicator):
    __slots__ = ("_by_type",)

    def __init__(self, horizon_ms: int) -> None:
        super().__init__(horizon_ms=horizon_ms)  # unused itself: keeps the base class whole
        self._by_type = {kind: Deduplicator(horizon_ms=horizon_ms) for kind in ("share", "block", "miner")}

    def __len__(self) -> int:
        return sum(len(d) for d in self._by_type.values())

    @property
    def watermark_ms(self) -> int:
        return self._by_type["share"].watermark_ms

    def fresh(self, events: Iterable[E]) -> list[E]:
        """Events of ONE type (as the model passes them): those not seen before."""
        batch = list(events)
        if not batch:
            return batch
        return self._by_type[batch[0].type].fresh(batch)  # type: ignore[attr-defined]

    def seen_before(self, event_id: str, ts_ms: int) -> bool:
        """The model asks this for miner events only."""
        return self._by_type["miner"].seen_before(event_id, ts_ms)

    def remember(self, event: Event) -> None:
        """Note a replayed event's id under its type (warm-up: nothing is counted)."""
        self._by_type[event.type].seen_before(event.event_id, event.ts_ms)
