"""Kafka records to share columns, for the columnar fold (pure: no I/O).

The same verdicts as decoding.decode_records, reached batch-wide: each value is
decoded by msgspec into a struct that carries valid_share's per-field rules
(lengths, positive numbers, the status set, checked in C); the rules that need
a character class are asked once per batch (ids and miners joined into one
string, names once per distinct value, times as one array). A record that fails
any of them, or is not a share, goes to `decode_records` with the other such
records of the batch: the contract's models decide it and write its dead letter,
so this path is never looser than today's and every reason is today's.

The output is a `ColumnarEvents`: a sequence aligned with the records (as
`Decoded.events` is), whose shares stay in arrays; slicing it per topic run
gives views on the same columns, so only fold.py's groups become objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Annotated, Final, Literal, overload

import msgspec
import numpy as np
import numpy.typing as npt

from shared.events import MAX_FUTURE_MS, MIN_TS_MS, Event
from shared.kafka.consumer import Record
from shared.kafka.deadletter import DeadLetter
from shared.share_checks import ValidShare, valid_share

from ..config import AggregatorSettings
from ..domain.minutes import WorkerKey
from ..domain.share import Share
from .decoding import Decoded, decode_records

__all__ = ["STATUS_CODES", "STATUS_NAMES", "ColumnarEvents", "ShareColumns", "decode_columns", "decode_for_fold"]

STATUS_CODES: Final = {"accepted": 0, "rejected": 1, "stale": 2}
STATUS_NAMES: Final = ("accepted", "rejected", "stale")

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_Miner = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_Positive = Annotated[float, msgspec.Meta(gt=0)]  # JSON has no inf/nan; bool is refused (strict)
_Reason = Annotated[str, msgspec.Meta(max_length=128)]


class _Share(msgspec.Struct):
    """The fields valid_share reads, with the per-field rules msgspec can check in C;
    unknown fields are ignored, as there."""

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
_getters: Final = tuple(attrgetter(name) for name in ("event_id", "ts", "node", "miner", "pool", "worker"))


@dataclass(slots=True)
class ShareColumns:
    """A batch's valid shares, in record order."""

    event_id: list[str]
    ts: I64
    pool: list[str]
    miner: list[str]
    worker: list[str]
    difficulty: F64
    status: I64  # STATUS_CODES
    actual: F64  # 0.0 where none was reported (as MinuteStats.best_seen)
    slow: int = 0  # records the contract's models decided (valid_share could not prove them)
    # worker_numbers' cache: derived from the columns, so neither an argument nor compared.
    _numbering: tuple[I64, list[WorkerKey]] | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.event_id)

    def worker_numbers(self) -> tuple[I64, list[WorkerKey]]:
        """Each row's worker as a dense int (numbered by first appearance) and the workers in
        that order: worked out once per batch, for the fold's group-by and `auto`'s density."""
        if self._numbering is None:
            keys = list(zip(self.pool, self.miner, self.worker, strict=True))
            number = dict(zip(dict.fromkeys(keys), range(len(keys)), strict=False))  # C-level: no frame per row
            self._numbering = (np.fromiter(map(number.__getitem__, keys), np.int64, len(keys)), list(number))
        return self._numbering

    @classmethod
    def of_shares(cls, shares: Sequence[Share], slow: int = 0) -> ShareColumns:
        n = len(shares)
        return cls(
            event_id=[s.event_id for s in shares],
            ts=np.fromiter((s.ts_ms for s in shares), np.int64, n),
            pool=[s.pool for s in shares], miner=[s.miner for s in shares], worker=[s.worker for s in shares],
            difficulty=np.fromiter((s.difficulty for s in shares), np.float64, n),
            status=np.fromiter((STATUS_CODES[s.status] for s in shares), np.int64, n),
            actual=np.fromiter((s.actual_difficulty or 0.0 for s in shares), np.float64, n),
            slow=slow,
        )

    def take(self, order: I64) -> ShareColumns:
        rows = order.tolist()
        return ShareColumns(
            [self.event_id[i] for i in rows], self.ts[order], [self.pool[i] for i in rows],
            [self.miner[i] for i in rows], [self.worker[i] for i in rows], self.difficulty[order],
            self.status[order], self.actual[order], self.slow,
        )

    def share(self, row: int) -> ValidShare:
        """One row as today's decoding would have made it (node and reason are not kept: the
        fold reads neither)."""
        actual = float(self.actual[row])
        return ValidShare(self.event_id[row], int(self.ts[row]), self.pool[row], "", self.miner[row],
                          self.worker[row], float(self.difficulty[row]), STATUS_NAMES[int(self.status[row])],
                          None, actual or None)


class _ShareMark:
    """Where a record's share lives in the columns (one shared instance)."""

    __slots__ = ()


SHARE: Final = _ShareMark()


class ColumnarEvents(Sequence["Event | Share | None"]):
    """Decoded events aligned with records [start, stop) of a batch: shares as column rows
    (`rows`), other events as objects, None where the record was dead-lettered."""

    __slots__ = ("_objects", "_share_pos", "columns", "start", "stop")

    def __init__(self, columns: ShareColumns, share_pos: I64, objects: list[Event | Share | _ShareMark | None],
                 start: int = 0, stop: int | None = None) -> None:
        self.columns = columns
        self._share_pos = share_pos  # record position of each column row (ascending)
        self._objects = objects  # the whole batch's, SHARE where the record is a column row
        self.start = start
        self.stop = len(objects) if stop is None else stop

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, index: int) -> Event | Share | None: ...
    @overload
    def __getitem__(self, index: slice) -> ColumnarEvents: ...

    def __getitem__(self, index: int | slice) -> Event | Share | None | ColumnarEvents:
        if isinstance(index, slice):
            first, last, step = index.indices(len(self))
            if step != 1:
                raise ValueError("columnar events are sliced in runs")
            return ColumnarEvents(self.columns, self._share_pos, self._objects,
                                  self.start + first, self.start + max(first, last))
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        position = self.start + index % len(self)
        item = self._objects[position]
        if isinstance(item, _ShareMark):
            return self.columns.share(int(np.searchsorted(self._share_pos, position)))
        return item

    def __iter__(self) -> Iterator[Event | Share | None]:
        return map(self.__getitem__, range(len(self)))

    @property
    def rows(self) -> I64:
        """The column rows of this view's shares, in record order."""
        low, high = np.searchsorted(self._share_pos, (self.start, self.stop)).tolist()
        return np.arange(low, high, dtype=np.int64)

    def materialized(self) -> list[Event | Share | None]:
        """The view as decode_records' aligned list (shares as `ValidShare`s)."""
        shares = iter(map(self.columns.share, self.rows.tolist()))
        return [next(shares) if isinstance(o, _ShareMark) else o for o in self._objects[self.start:self.stop]]

    def others(self) -> list[Event]:
        """This view's events that are not shares (blocks, miner events), in record order."""
        return [o for o in self._objects[self.start:self.stop] if o is not None and o is not SHARE]  # type: ignore[misc]


def _decode_or_none(value: bytes | None) -> _Share | None:
    try:
        return _decode(value or b"")
    except msgspec.DecodeError:  # ValidationError included: the models decide (and explain)
        return None


def _valid_name(name: str) -> bool:
    # valid_share's own name rule (and its cache of known names), asked once per distinct name.
    probe = {"type": "share", "event_id": "x", "ts": MIN_TS_MS, "pool": name, "node": name,
             "worker": name, "miner": "m", "difficulty": 1.0, "status": "accepted"}
    return valid_share(probe, MIN_TS_MS) is not None


def _latest_ms(records: Sequence[Record], wall_ms: int) -> I64:
    # record_now_ms per record, plus the allowed future: the broker's time capped at the wall clock.
    ts = np.fromiter((wall_ms if r.timestamp is None else r.timestamp for r in records), np.int64, len(records))
    return np.where((ts <= 0) | (ts > wall_ms), wall_ms, ts) + MAX_FUTURE_MS


def _batch_valid(structs: list[_Share], latest_ms: I64) -> ShareColumns | None:
    """The columns if every struct passes valid_share's remaining checks, asked batch-wide;
    None sends the structs to valid_share one by one."""
    n = len(structs)
    ids, ts, nodes, miners, pools, workers = (list(map(get, structs)) for get in _getters)
    try:
        ts_arr = np.fromiter(ts, np.int64, n)  # a str (RFC 3339) or a huge int fails here
    except (TypeError, ValueError, OverflowError):
        return None
    joined_ids, joined_miners = "".join(ids), "".join(miners)
    if not (joined_ids.isascii() and joined_ids.isprintable()
            and joined_miners.isascii() and joined_miners.isprintable() and " " not in joined_miners
            and all(map(_valid_name, {*pools, *nodes, *workers}))
            and bool(((ts_arr >= MIN_TS_MS) & (ts_arr <= latest_ms)).all())):
        return None
    code = STATUS_CODES.__getitem__
    return ShareColumns(
        event_id=ids, ts=ts_arr, pool=pools, miner=miners, worker=workers,
        difficulty=np.fromiter(map(attrgetter("difficulty"), structs), np.float64, n),
        status=np.fromiter(map(code, map(attrgetter("status"), structs)), np.int64, n),
        actual=np.fromiter((0.0 if s.actual_difficulty is None else s.actual_difficulty for s in structs),
                           np.float64, n),
    )


@dataclass(slots=True)
class ColumnarDecoded:
    events: ColumnarEvents
    letters: list[DeadLetter]


def decode_columns(records: Sequence[Record], wall_ms: int) -> ColumnarDecoded:
    """The batch decoded: shares as columns, the rest as decode_records makes them."""
    n = len(records)
    structs: list[_Share | None]
    try:  # one comprehension for the usual all-share batch: no per-record try
        structs = [_decode(record.value or b"") for record in records]
    except msgspec.DecodeError:
        structs = [_decode_or_none(record.value) for record in records]
    latest_ms = _latest_ms(records, wall_ms)
    fast = [i for i, s in enumerate(structs) if s is not None] if None in structs else list(range(n))
    fast_structs: list[_Share] = [structs[i] for i in fast]  # type: ignore[misc]
    columns = _batch_valid(fast_structs, latest_ms[fast]) if fast_structs else None
    fast_shares: list[Share] = []
    if columns is None and fast_structs:  # the rare path: valid_share per struct
        limits = latest_ms[fast].tolist()
        checked = [valid_share(msgspec.structs.asdict(s), limit) for s, limit in zip(fast_structs, limits,
                                                                                        strict=True)]
        fast_shares = [s for s in checked if s is not None]
        fast = [i for i, s in zip(fast, checked, strict=True) if s is not None]
    objects: list[Event | Share | _ShareMark | None] = [None] * n
    for i in fast:
        objects[i] = SHARE
    slow = [i for i, o in enumerate(objects) if o is None] if len(fast) < n else []
    letters: list[DeadLetter] = []
    slow_shares: list[Share] = []
    slow_pos: list[int] = []
    if slow:
        decoded = decode_records([records[i] for i in slow], wall_ms)
        letters = decoded.letters
        for i, event in zip(slow, decoded.events, strict=True):
            if event is not None and event.type == "share":
                objects[i] = SHARE
                slow_shares.append(event)  # type: ignore[arg-type]
                slow_pos.append(i)
            else:
                objects[i] = event
    if columns is None:
        columns = ShareColumns.of_shares(fast_shares)
    share_pos = np.asarray(fast, np.int64)
    if slow_shares:  # merge the models' shares in, back into record order
        extra = ShareColumns.of_shares(slow_shares)
        both = _concat(columns, extra)
        share_pos = np.concatenate((share_pos, np.asarray(slow_pos, np.int64)))
        order = np.argsort(share_pos, kind="stable")
        columns, share_pos = both.take(order), share_pos[order]
    columns.slow = len(slow)
    return ColumnarDecoded(ColumnarEvents(columns, share_pos, objects), letters)


def _concat(a: ShareColumns, b: ShareColumns) -> ShareColumns:
    return ShareColumns(
        a.event_id + b.event_id, np.concatenate((a.ts, b.ts)), a.pool + b.pool, a.miner + b.miner,
        a.worker + b.worker, np.concatenate((a.difficulty, b.difficulty)), np.concatenate((a.status, b.status)),
        np.concatenate((a.actual, b.actual)),
    )


def decode_for_fold(records: Sequence[Record], wall_ms: int, settings: AggregatorSettings) -> Decoded:
    """The batch decoded for the fold the settings choose (fold.py folds either form)."""
    mode = settings.aggregator_fold
    if mode == "records":
        return decode_records(records, wall_ms)
    decoded = decode_columns(records, wall_ms)
    columns = decoded.events.columns
    if mode == "auto" and len(columns) and len(columns) < settings.aggregator_fold_auto_shares_per_worker * len(
            columns.worker_numbers()[1]):
        # Sparse: about one share per worker-minute group, where the group-by costs more than it saves.
        return Decoded(decoded.events.materialized(), decoded.letters)
    return Decoded(decoded.events, decoded.letters)
