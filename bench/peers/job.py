"""What every peer job shares: the job's definition, its progress clock and its result file.

The job, the same in each framework: per worker and minute of EVENT time
(the share's `ts`, milliseconds), the accepted share count and the accepted
difficulty sum. The aggregator does this and more (dedup, liveness,
exactly-once rows in PostgreSQL).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

WINDOW_MS = 60_000


def accepted_in(events: int) -> int:
    """How many of aggregator_bench's `produce` events are accepted: every 50th is rejected."""
    return events - (events + 49) // 50


def worker_key(miner: str, worker: str) -> str:
    return f"{miner}/{worker}"


@dataclass
class Progress:
    """Counts records and times the run from the first record seen to the last one expected."""

    expected: int
    seen: int = 0
    began: float | None = None
    ended: float | None = None
    extra: dict[str, int] = field(default_factory=dict)

    def first(self) -> None:
        if self.began is None:
            self.began = time.perf_counter()

    def count(self, n: int = 1) -> bool:
        """Add n records; True once the last expected one has been counted."""
        self.seen += n
        if self.seen >= self.expected and self.ended is None:
            self.ended = time.perf_counter()
        return self.ended is not None

    def write(self, path: Path, events: int) -> None:
        # The frameworks own stdout (faust redirects it into its log): the result goes to a file.
        assert self.began is not None and self.ended is not None
        seconds = max(self.ended - self.began, 1e-9)
        path.write_text(json.dumps({"events": events, "seconds": seconds, "rate": events / seconds,
                                    "counted": self.seen, **self.extra}))
