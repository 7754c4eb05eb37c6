"""A messy event stream with its ground truth, computed the plain way.

Several pools, miners and workers; retries of the same event (same event_id,
resent a few records later), local reordering, late shares (minutes to 23
hours), too-late ones (over 24 hours behind the stream), blocks that are later
confirmed or orphaned, connect and disconnect events. Event times end a few
hours before the wall clock, so nothing is "in the future".

The truth is recounted event by event from the unique events: no dedup
buckets, no watermark, no minute folding tricks. Too-late shares are placed
far enough behind (40 minutes past the limit) that whichever partition they
land in has certainly moved past the limit too.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

HOUR = 3_600_000
MIN = 60_000


def minute(ts_ms: int) -> int:
    return ts_ms - ts_ms % MIN


@dataclass
class Row:
    accepted: int = 0
    rejected: int = 0
    stale: int = 0
    difficulties: list[float] = field(default_factory=list)
    best: float = 0.0
    last_ms: int | None = None
    blocks: int = 0
    active_miners: int = 0  # pool rows: miners / workers with a share in this minute or the 9 before
    active_workers: int = 0

    @property
    def difficulty(self) -> float:
        return math.fsum(self.difficulties)


@dataclass
class Truth:
    workers: dict[tuple[str, str, str, int], Row] = field(default_factory=lambda: defaultdict(Row))
    pools: dict[tuple[str, int], Row] = field(default_factory=lambda: defaultdict(Row))
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)  # hash -> pool, status, found_ms, nd
    shares: int = 0  # unique shares counted
    duplicates: int = 0
    too_late: int = 0


def _ts(ts_ms: int, as_text: bool) -> object:
    if not as_text:
        return ts_ms
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds")


def make_stream(
    seed: int,
    *,
    shares: int = 30_000,
    hours: float = 27.0,
    pools: tuple[str, ...] = ("main", "alt", "lab"),
    miners: int = 24,
    late_fraction: float = 0.05,
    dup_fraction: float = 0.08,
    too_late: int = 50,
    blocks: int = 10,
    end_ms: int | None = None,
) -> tuple[list[dict[str, Any]], Truth]:
    rng = random.Random(seed)
    end = end_ms if end_ms is not None else time.time_ns() // 1_000_000 - 2 * HOUR
    start = minute(end - int(hours * HOUR))
    workers = [
        (pools[m % len(pools)], f"miner{seed}x{m:03d}", f"rig{w}")
        for m in range(miners) for w in range(1 + rng.randrange(3))
    ]
    ids = iter(range(10**9))
    out: list[dict[str, Any]] = []
    for pool, miner, worker in workers:
        out.append({"event_id": f"c{seed}-{next(ids)}", "type": "miner", "ts": start - MIN,
                    "pool": pool, "node": "n1", "miner": miner, "worker": worker, "state": "connected",
                    "difficulty": 1024.0})
    step = hours * HOUR / shares
    too_late_from = start + 25.5 * HOUR
    too_late_every = max(1, int((end - too_late_from) / step / max(too_late, 1)))
    pending_blocks: list[tuple[int, dict[str, Any]]] = []
    block_at = set(rng.sample(range(shares // 10, shares - shares // 10), blocks))
    for i in range(shares):
        t = start + int(i * step)
        pool, miner, worker = rng.choice(workers)
        ts = t
        roll = rng.random()
        if t >= too_late_from and i % too_late_every == 0:
            ts = t - 24 * HOUR - rng.randrange(40 * MIN, 2 * HOUR)
        elif roll < late_fraction:
            ts = max(start, t - rng.randrange(2 * MIN, 23 * HOUR))
        status = rng.choice(["accepted"] * 18 + ["rejected", "stale"]) if i not in block_at else "accepted"
        event: dict[str, Any] = {
            "event_id": f"s{seed}-{next(ids)}", "type": "share", "ts": _ts(ts, rng.random() < 0.3),
            "pool": pool, "node": rng.choice(["n1", "n2"]), "miner": miner, "worker": worker,
            "difficulty": rng.choice([1.0, 3.7, 1024.0, rng.uniform(0.01, 1e6)]), "status": status,
        }
        if rng.random() < 0.5:
            event["actual_difficulty"] = rng.uniform(1.0, 1e7)
        out.append(event)
        if i in block_at:
            found = {"event_id": f"b{seed}-{next(ids)}", "type": "block", "ts": t, "pool": pool,
                     "node": "n1", "miner": miner, "worker": worker, "height": 900_000 + i,
                     "hash": f"{rng.getrandbits(256):064x}", "network_difficulty": 5e5 * rng.uniform(1, 3),
                     "reward": 3.125, "status": "candidate"}
            out.append(found)
            final = rng.choice(["confirmed", "confirmed", "orphaned"])
            later = {**found, "event_id": f"b{seed}-{next(ids)}", "status": final}
            pending_blocks.append((i + rng.randrange(50, 500), later))
        for due, later in [pb for pb in pending_blocks if pb[0] <= i]:
            # Reported when it happens: its time is the stream's time then. (An event far
            # ahead of the others would move the dedup horizon for all of them.)
            out.append({**later, "ts": t})
            pending_blocks.remove((due, later))
        if rng.random() < dup_fraction:  # a retry a few records later
            out.insert(len(out) - rng.randrange(0, 3), dict(out[-1]))
    out.extend({**later, "ts": start + int(shares * step)} for _, later in pending_blocks)
    for pool, miner, worker in workers[:3]:
        out.append({"event_id": f"c{seed}-{next(ids)}", "type": "miner", "ts": end, "pool": pool,
                    "node": "n1", "miner": miner, "worker": worker, "state": "disconnected"})
    for i in range(0, len(out) - 1, 3):  # local reordering
        if rng.random() < 0.2:
            j = min(len(out) - 1, i + rng.randrange(1, 4))
            out[i], out[j] = out[j], out[i]
    return out, recount(out)


def ts_ms(event: dict[str, Any]) -> int:
    ts = event["ts"]
    if isinstance(ts, int):
        return ts
    return int(datetime.fromisoformat(ts).timestamp() * 1000 + 0.5)


def recount(events: list[dict[str, Any]]) -> Truth:
    truth = Truth()
    seen: set[str] = set()
    newest = 0
    for event in events:
        if event["event_id"] in seen:
            truth.duplicates += 1
            continue
        seen.add(event["event_id"])
        ts = ts_ms(event)
        if event["type"] == "share":
            if ts < newest - 24 * HOUR - 30 * MIN:  # see the module docstring
                truth.too_late += 1
                continue
            newest = max(newest, ts)
            truth.shares += 1
            for row in (truth.workers[(event["pool"], event["miner"], event["worker"], minute(ts))],
                        truth.pools[(event["pool"], minute(ts))]):
                status = event["status"]
                if status == "accepted":
                    row.accepted += 1
                    row.difficulties.append(event["difficulty"])
                elif status == "rejected":
                    row.rejected += 1
                else:
                    row.stale += 1
                row.best = max(row.best, event.get("actual_difficulty", 0.0))
                row.last_ms = max(row.last_ms or 0, ts)
        elif event["type"] == "block":
            known = truth.blocks.setdefault(event["hash"], {
                "pool": event["pool"], "miner": event["miner"], "worker": event["worker"],
                "status": "candidate", "found_ms": ts, "nd": event["network_difficulty"]})
            known["found_ms"] = min(known["found_ms"], ts)  # the earliest report is the find
            if event["status"] != "candidate":
                known["status"] = event["status"]
    _count_active(truth)
    for block in truth.blocks.values():
        found = minute(block["found_ms"])
        truth.workers[(block["pool"], block["miner"], block["worker"], found)].blocks += 1
        truth.pools[(block["pool"], found)].blocks += 1
    return truth


def _count_active(truth: Truth) -> None:
    """Active in minute M: a share in M-9 .. M (docs/aggregator.md), by sets, minute by minute."""
    workers: dict[tuple[str, int], set[tuple[str, str]]] = defaultdict(set)
    for pool, miner, worker, share_minute in list(truth.workers):
        for k in range(10):
            workers[(pool, share_minute + k * MIN)].add((miner, worker))
    for key, active in workers.items():
        row = truth.pools[key]  # a minute after the last share may hold activity alone
        row.active_workers = len(active)
        row.active_miners = len({miner for miner, _ in active})
