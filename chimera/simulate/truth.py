"""The ground truth of a run as NDJSON, one record a line, told apart by `kind`:

- `run`: seed, start, pool hashrate, network difficulty, rates (first line);
- `worker`: each worker's healthy hashrate, model, node, team;
- `scheduled`: each scenario action, with its absolute `ts_ms`;
- `state`: from `ts_ms` on, a worker hashes at `hashrate_hs` (0 offline), at `difficulty`;
- `event`: every event a sink acknowledged, as sent (`event`);
- `metric` / `performance`: every sample sent (`sample`, the request body).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import orjson

__all__ = ["TruthLog", "TruthSink"]


class TruthSink(Protocol):
    def write(self, record: Mapping[str, object]) -> None: ...

    def flush(self) -> None: ...


class TruthLog:
    """Writes truth records to an NDJSON file (replacing it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = self.path.open("wb")

    def write(self, record: Mapping[str, object]) -> None:
        self._file.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
