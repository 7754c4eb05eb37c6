"""Blocks, round effort and luck, per pool.

Rounds: a found block ends the round that was running when it was found. A
share belongs to a round by its EVENT time, at one-second resolution: round k
holds the shares whose second is in [second(block k-1), second(block k)); a
share in the very second a block was found counts to the next round. Seconds
(not arrival order, which differs between the share and block topics on every
run) make effort deterministic and replay-safe; the cost is at most one second
of pool work misplaced per round, well under 1% for any real round. A block
event may arrive after later shares (different topics): per-second share
difficulty is kept for `detail_horizon_ms` (default 24 h 10 min, matching the
lateness limit) so the running round can be split exactly where it belongs.

Effort of a block = accepted difficulty of its round / its network difficulty
(1.0 = 100% = exactly the expected work). It is unknown (None) for the first
block the ledger sees unless `start_round` told it when that round began (the
previous block's time, loaded from storage).

Luck over the last n blocks = n / sum(effort of those blocks): the number of
blocks found divided by the number expected for the work done (100% = as
expected, higher = luckier). Orphaned blocks stay in: the pool did find them
with that work, so they measure hashing luck; orphaning is a propagation
problem, reported separately as `orphaned` counts. They also stay round
boundaries, as the pool software resets its round when it finds any block.

Status by hash: candidate -> confirmed or orphaned. The newest event by event
time wins among final states (a confirmed block later reorganised away becomes
orphaned); a final state is never undone by a candidate event, whatever the
arrival order. The block's found time is the earliest event time seen for it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from shared.events import BlockEvent
from shared.hashrate import LUCK_WINDOWS

from .minutes import DIFFICULTY_SCALE
from .share import Share

__all__ = [
    "LUCK_WINDOWS",
    "BlockLedger",
    "BlockRecord",
    "BlockUpdate",
    "Luck",
    "fold_round_seconds",
]

_RANK: Final = {"candidate": 0, "confirmed": 1, "orphaned": 1}
_ORIGIN: Final = ""  # hash of a round boundary that is not a block (see start_round)
_UNITS: Final = 2**80


@dataclass(slots=True)
class BlockRecord:
    pool: str
    hash: str
    height: int
    miner: str
    worker: str
    network_difficulty: float
    reward: float | None
    status: str
    status_ts_ms: int
    found_at_ms: int
    in_rounds: bool = True  # False if it arrived too late to split its round


@dataclass(slots=True, frozen=True)
class BlockUpdate:
    block: BlockRecord
    is_new: bool
    moved_from_ms: int | None  # the previous found time, if an earlier event moved it


@dataclass(slots=True, frozen=True)
class Luck:
    window: int  # the n asked for
    blocks: int  # blocks with a known effort that it rests on (<= window)
    luck: float | None  # blocks / sum(effort); None without blocks


def fold_round_seconds(shares: Iterable[Share]) -> dict[tuple[str, int], int]:
    """Accepted difficulty units per (pool, second of event time), for the ledger."""
    out: dict[tuple[str, int], int] = {}
    get = out.get
    scale = DIFFICULTY_SCALE
    for share in shares:
        if share.status == "accepted":
            key = (share.pool, share.ts_ms // 1000)
            out[key] = get(key, 0) + int(share.difficulty * scale)
    return out


class _Rounds:
    __slots__ = ("bound_s", "bounds", "detail_from_s", "newest_s", "pruned_at_s", "seconds", "units")

    def __init__(self) -> None:
        self.bounds: list[tuple[int, int, str]] = []  # sorted (second, ts_ms, hash)
        self.bound_s: list[int] = []  # the seconds alone, for bisect
        self.units: list[int] = [0]  # per round; len(bounds) + 1
        self.seconds: dict[int, int] = {}  # per-second detail within the horizon
        self.newest_s = -(2**62)
        self.detail_from_s = -(2**62)  # detail before this second has been pruned
        self.pruned_at_s = -(2**62)

    def add(self, second: int, units: int) -> None:
        self.seconds[second] = self.seconds.get(second, 0) + units
        self.units[bisect_right(self.bound_s, second)] += units
        self.newest_s = max(self.newest_s, second)

    def _units_between(self, start_s: int, end_s: int) -> int:
        seconds = self.seconds
        if end_s - start_s <= len(seconds):
            return sum(seconds.get(t, 0) for t in range(start_s, end_s))
        return sum(u for t, u in seconds.items() if start_s <= t < end_s)

    def insert(self, second: int, ts_ms: int, block_hash: str) -> bool:
        if second < self.detail_from_s:
            return False  # its round can no longer be split exactly
        bound = (second, ts_ms, block_hash)
        j = bisect_left(self.bounds, bound)
        end_s = self.bound_s[j] if j < len(self.bound_s) else max(self.newest_s, second) + 1
        after = self._units_between(second, end_s)
        self.units[j] -= after
        self.units.insert(j + 1, after)
        self.bounds.insert(j, bound)
        self.bound_s.insert(j, second)
        return True

    def remove(self, second: int, ts_ms: int, block_hash: str) -> None:
        j = bisect_left(self.bounds, (second, ts_ms, block_hash))
        self.units[j] += self.units.pop(j + 1)
        del self.bounds[j]
        del self.bound_s[j]

    def drop_oldest(self) -> str:
        """Forget the oldest boundary (merging its two rounds); returns its hash."""
        _, _, block_hash = self.bounds.pop(0)
        del self.bound_s[0]
        self.units[0] += self.units.pop(1)
        return block_hash

    def prune(self, horizon_s: int) -> None:
        floor = self.newest_s - horizon_s
        if floor - self.pruned_at_s < 3600:  # the scan is O(detail): at most hourly
            return
        self.pruned_at_s = floor
        self.detail_from_s = max(self.detail_from_s, floor)
        self.seconds = {t: u for t, u in self.seconds.items() if t >= floor}


class BlockLedger:
    """Blocks by hash, rounds and luck for every pool (see module docstring)."""

    __slots__ = ("_blocks", "_found", "_horizon_s", "_max_blocks", "_rounds")

    def __init__(self, detail_horizon_ms: int = 24 * 3_600_000 + 600_000, max_blocks: int = 4096):
        self._blocks: dict[str, BlockRecord] = {}
        self._rounds: dict[str, _Rounds] = {}
        self._found: dict[str, int] = {}  # per pool, every distinct hash ever seen
        self._horizon_s = detail_horizon_ms // 1000
        self._max_blocks = max(max_blocks, max(LUCK_WINDOWS))

    def _pool(self, pool: str) -> _Rounds:
        r = self._rounds.get(pool)
        if r is None:
            r = self._rounds[pool] = _Rounds()
        return r

    def add_round_seconds(self, deltas: Mapping[tuple[str, int], int]) -> None:
        """Accepted difficulty per (pool, second), from `fold_round_seconds`."""
        touched: set[str] = set()
        for (pool, second), units in deltas.items():
            self._pool(pool).add(second, units)
            touched.add(pool)
        for pool in touched:
            self._rounds[pool].prune(self._horizon_s)

    def start_round(self, pool: str, ts_ms: int) -> None:
        """Declare when the running round began (e.g. the last block before a restart)."""
        self._pool(pool).insert(ts_ms // 1000, ts_ms, _ORIGIN)

    def observe(self, event: BlockEvent) -> BlockUpdate:
        """Record a block event; returns the block's state after it."""
        ts = event.ts_ms
        record = self._blocks.get(event.hash)
        if record is None:
            record = BlockRecord(
                event.pool, event.hash, event.height, event.miner, event.worker,
                event.network_difficulty, event.reward, event.status, ts, ts,
            )
            self._blocks[event.hash] = record
            self._found[event.pool] = self._found.get(event.pool, 0) + 1
            rounds = self._pool(event.pool)
            record.in_rounds = rounds.insert(ts // 1000, ts, event.hash)
            self._cap(rounds)
            return BlockUpdate(record, True, None)
        if (_RANK[event.status], ts, event.status == "orphaned") > (
            _RANK[record.status], record.status_ts_ms, record.status == "orphaned"
        ):
            record.status = event.status
            record.status_ts_ms = ts
            if event.reward is not None:
                record.reward = event.reward
        moved = None
        if ts < record.found_at_ms:
            moved = record.found_at_ms
            rounds = self._pool(record.pool)
            if record.in_rounds:
                rounds.remove(moved // 1000, moved, record.hash)
            record.found_at_ms = ts
            record.in_rounds = rounds.insert(ts // 1000, ts, record.hash)
        return BlockUpdate(record, False, moved)

    def _cap(self, rounds: _Rounds) -> None:
        while len(rounds.bounds) > self._max_blocks:
            self._blocks.pop(rounds.drop_oldest(), None)

    def block(self, block_hash: str) -> BlockRecord | None:
        return self._blocks.get(block_hash.lower())

    def effort(self, block_hash: str) -> float | None:
        """Round effort of a block (1.0 = 100%); None if its round start is unknown."""
        record = self._blocks.get(block_hash.lower())
        if record is None or not record.in_rounds:
            return None
        rounds = self._rounds[record.pool]
        j = bisect_left(rounds.bounds, (record.found_at_ms // 1000, record.found_at_ms, record.hash))
        if j == 0:
            return None
        return rounds.units[j] / _UNITS / record.network_difficulty

    def current_effort(self, pool: str, network_difficulty: float | None = None) -> float | None:
        """Effort of the running round, against the given (or the latest known) network difficulty."""
        rounds = self._rounds.get(pool)
        if rounds is None or not rounds.bounds:
            return None
        if network_difficulty is None:
            latest = self._latest_blocks(pool, 1)
            if not latest:
                return None
            network_difficulty = latest[0].network_difficulty
        return rounds.units[-1] / _UNITS / network_difficulty

    def _latest_blocks(self, pool: str, n: int) -> list[BlockRecord]:
        rounds = self._rounds.get(pool)
        out: list[BlockRecord] = []
        if rounds is None:
            return out
        for _, _, block_hash in reversed(rounds.bounds):
            if len(out) == n:
                break
            if block_hash != _ORIGIN:
                out.append(self._blocks[block_hash])
        return out

    def blocks(self, pool: str) -> list[BlockRecord]:
        """Blocks of a pool in found order (oldest first), those within rounds."""
        return list(reversed(self._latest_blocks(pool, self._max_blocks)))

    def luck(self, pool: str, window: int) -> Luck:
        """Luck over the last `window` blocks whose effort is known."""
        efforts: list[float] = []
        for record in self._latest_blocks(pool, self._max_blocks):
            if len(efforts) == window:
                break
            effort = self.effort(record.hash)
            if effort is not None:
                efforts.append(effort)
        total = sum(efforts)
        return Luck(window, len(efforts), len(efforts) / total if total > 0 else None)

    def blocks_found(self, pool: str) -> int:
        """Distinct blocks ever seen for the pool (orphaned ones included)."""
        return self._found.get(pool, 0)

    def counts(self, pool: str) -> dict[str, int]:
        """Retained blocks (the last `max_blocks`) of a pool by status."""
        out = {"candidate": 0, "confirmed": 0, "orphaned": 0}
        for record in self._blocks.values():
            if record.pool == pool:
                out[record.status] += 1
        return out
