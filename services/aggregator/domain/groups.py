"""A batch's worker-minute groups as columns: what the model's per-group state takes.

The fold's dict of `MinuteStats` is what storage and the tests read; the
window sums, liveness and the activity ledger read the same groups column by
column. The columnar fold builds these columns from its own arrays, so no
group is walked in Python to make them; `of_deltas` makes them from any dict
(the per-event fold, restored rows) in the dict's order.

Invariant: row i of every column is group i of the dict it came from, in that
dict's order; `difficulty` is each group's `MinuteStats.difficulty_accepted`
(the exact unit sum, correctly rounded), so both paths give the same floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from operator import attrgetter

from .minutes import MinuteStats, WorkerKey, WorkerMinuteKey

__all__ = ["MinuteGroups"]

_accepted = attrgetter("accepted")
_submitted = attrgetter("submitted")
_difficulty = attrgetter("difficulty_accepted")
_last = attrgetter("last_share_ms")


@dataclass(slots=True, frozen=True)
class MinuteGroups:
    keys: list[WorkerKey]  # (pool, miner, worker) of each group
    minute_ms: list[int]  # start of each group's minute (epoch ms)
    accepted: list[int]
    submitted: list[int]  # accepted + rejected + stale
    difficulty: list[float]  # accepted difficulty
    last_share_ms: list[int]  # newest share's event time; 0 = a row without shares

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def of_deltas(cls, deltas: Mapping[WorkerMinuteKey, MinuteStats]) -> MinuteGroups:
        stats = list(deltas.values())
        return cls(
            keys=[key[:3] for key in deltas],  # type: ignore[misc]
            minute_ms=[key[3] for key in deltas],
            accepted=list(map(_accepted, stats)),
            submitted=list(map(_submitted, stats)),
            difficulty=list(map(_difficulty, stats)),
            last_share_ms=list(map(_last, stats)),
        )

