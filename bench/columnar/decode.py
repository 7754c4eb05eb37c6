"""Record values -> share columns: msgspec structs, then the contract's fast checks
applied batch-wide (pure: no I/O).

The rules are share_checks.valid_share's, asked once per batch instead of once per
event: ids and miners are checked by joining them into one string (one C-level
`isascii`/`isprintable` for the batch), names once per distinct value, numbers
as arrays. A record that fails any of them, or that msgspec does not decode
into the struct, goes to `decode_records` (the contract's models decide), so
this path is never looser than today's and keeps every dead letter's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Annotated, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from services.aggregator.consume.decoding import decode_records
from services.aggregator.domain.share import Share
from shared.events import MAX_FUTURE_MS, MIN_TS_MS
from shared.kafka.consumer import Record
from shared.share_checks import valid_share

__all__ = ["STATUS_CODES", "ShareColumns", "decode_columns"]

STATUS_CODES: Final = {"accepted": 0, "rejected": 1, "stale": 2}


_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_Miner = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Positive = Annotated[float, msgspec.Meta(gt=0)]  # JSON has no inf/nan; bool is refused (strict)
_Reason = Annotated[str, msgspec.Meta(max_length=128)]


class _Share(msgspec.Struct):
    """The fields valid_share reads, with its per-field rules that msgspec checks in C
    while decoding (lengths, positive numbers, the status set); unknown fields are
    ignored, as there. What needs a character class is checked batch-wide below."""

    event_id: _Id
    type: Literal["share"]
    ts: int | str
    node: str
    miner: _Miner
    difficulty: _Positive
    status: Literal["accepted", "rejected", "stale"]
    pool: str = "main"
    worker: str = "default"
    reject_reason: _Reason | None = None
    actual_difficulty: _Positive | None = None


_decode: Final = msgspec.json.Decoder(_Share).decode
_column_getters: Final = tuple(attrgetter(name) for name in ("event_id", "ts", "node", "miner", "pool", "worker"))


@dataclass(slots=True)
class ShareColumns:
    """One batch's valid shares, in stream order (dead letters and non-shares left out)."""

    event_id: list[str]
    ts: npt.NDArray[np.int64]
    pool: list[str]
    miner: list[str]
    worker: list[str]
    difficulty: npt.NDArray[np.float64]
    status: npt.NDArray[np.int64]  # STATUS_CODES
    actual: npt.NDArray[np.float64]  # 0.0 where none was reported (as MinuteStats.best_seen)
    slow: int = 0  # records the models decided

    def __len__(self) -> int:
        return len(self.event_id)


def _latest(records: Sequence[Record], wall: int) -> npt.NDArray[np.int64]:
    # record_now_ms per record, as arrays: the broker's timestamp capped at the wall clock.
    ts = np.fromiter((wall if r.timestamp is None else r.timestamp for r in records), np.int64, len(records))
    return np.where((ts <= 0) | (ts > wall), wall, ts) + MAX_FUTURE_MS


def _batch_valid(structs: list[_Share], latest: npt.NDArray[np.int64]) -> ShareColumns | None:
    """The batch's columns if every decoded struct passes valid_share's remaining checks
    (character classes and the time range), asked batch-wide; None sends it row by row."""
    n = len(structs)
    ids, ts, nodes, miners, pools, workers = (list(map(get, structs)) for get in _column_getters)
    try:
        ts_arr = np.fromiter(ts, np.int64, n)  # a str (RFC 3339) or a huge int fails here
    except (TypeError, ValueError, OverflowError):
        return None
    joined_ids, joined_miners = "".join(ids), "".join(miners)
    if not (joined_ids.isascii() and joined_ids.isprintable()
            and joined_miners.isascii() and joined_miners.isprintable() and " " not in joined_miners
            and all(map(_valid_name, {*pools, *nodes, *workers}))
            and bool(((ts_arr >= MIN_TS_MS) & (ts_arr <= latest)).all())):
        return None
    code = STATUS_CODES.__getitem__
    return ShareColumns(
        event_id=ids, ts=ts_arr, pool=pools, miner=miners, worker=workers,
        difficulty=np.fromiter(map(attrgetter("difficulty"), structs), np.float64, n),
        status=np.fromiter(map(code, map(attrgetter("status"), structs)), np.int64, n),
        actual=np.fromiter((0.0 if s.actual_difficulty is None else s.actual_difficulty for s in structs),
                           np.float64, n),
    )


def _decode_or_none(value: bytes | None) -> _Share | None:
    try:
        return _decode(value or b"")
    except msgspec.DecodeError:
        return None


def _valid_name(name: str) -> bool:
    # valid_share's own name rule (and its cache of known names), asked once per distinct name.
    probe = {"type": "share", "event_id": "x", "ts": MIN_TS_MS, "pool": name, "node": name,
             "worker": name, "miner": "m", "difficulty": 1.0, "status": "accepted"}
    return valid_share(probe, MIN_TS_MS) is not None


def decode_columns(records: Sequence[Record], wall_ms: int) -> ShareColumns:
    """The batch's shares as columns, in record order."""
    structs: list[_Share | None]
    try:  # one comprehension for the usual all-valid batch: no per-record try
        structs = [_decode(record.value or b"") for record in records]
    except msgspec.DecodeError:  # ValidationError included: the models decide (and explain)
        structs = [_decode_or_none(record.value) for record in records]
    latest = _latest(records, wall_ms)
    if None not in structs:
        columns = _batch_valid(structs, latest)  # type: ignore[arg-type]
        if columns is not None:
            return columns
    return _checked_one_by_one(records, structs, latest, wall_ms)


def _checked_one_by_one(records: Sequence[Record], structs: list[_Share | None], latest: npt.NDArray[np.int64],
                        wall_ms: int) -> ShareColumns:
    """The rare path: valid_share per struct, the models for everything else."""
    shares: list[Share | None] = []
    for struct, limit in zip(structs, latest.tolist(), strict=True):
        shares.append(None if struct is None else valid_share(msgspec.structs.asdict(struct), limit))
    slow = [i for i, share in enumerate(shares) if share is None]
    if slow:
        decoded = decode_records([records[i] for i in slow], wall_ms).events
        for i, event in zip(slow, decoded, strict=True):
            if event is not None and event.type == "share":
                shares[i] = event  # type: ignore[assignment]
    kept = [share for share in shares if share is not None]
    return _columns([_Share(s.event_id, "share", s.ts_ms, "", s.miner, s.difficulty, s.status, s.pool, s.worker,
                            None, s.actual_difficulty) for s in kept], len(slow))


def _columns(structs: list[_Share], slow: int) -> ShareColumns:
    n = len(structs)
    if n == 0:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return ShareColumns([], empty_i, [], [], [], empty_f, empty_i.copy(), empty_f.copy(), slow)
    code = STATUS_CODES.__getitem__
    return ShareColumns(
        event_id=[s.event_id for s in structs],
        ts=np.fromiter(map(attrgetter("ts"), structs), np.int64, n),
        pool=[s.pool for s in structs],
        miner=[s.miner for s in structs],
        worker=[s.worker for s in structs],
        difficulty=np.fromiter(map(attrgetter("difficulty"), structs), np.float64, n),
        status=np.fromiter(map(code, map(attrgetter("status"), structs)), np.int64, n),
        actual=np.fromiter((0.0 if s.actual_difficulty is None else s.actual_difficulty for s in structs),
                           np.float64, n),
        slow=slow,
    )
