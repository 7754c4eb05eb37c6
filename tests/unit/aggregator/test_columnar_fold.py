"""AGGREGATOR_FOLD=columnar and auto give exactly what records gives: rows, dedup journals,
lateness, activity, liveness, blocks, offsets and dead letters, batch after batch."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from services.aggregator.config import AggregatorSettings
from services.aggregator.consume.columnar_decode import ColumnarEvents, decode_columns, decode_for_fold
from services.aggregator.consume.columnar_fold import (
    fold_columns,
    fold_groups,
    ingest_columns,
    lateness,
    round_seconds,
    stable_hashes,
)
from services.aggregator.consume.decoding import decode_records
from services.aggregator.consume.fold import Folded, fold_partition
from services.aggregator.consume.takeover import new_model
from services.aggregator.consume.writes import merge_deltas
from services.aggregator.domain.blocks import fold_round_seconds
from services.aggregator.domain.dedup import stable_hash64
from services.aggregator.domain.groups import MinuteGroups
from services.aggregator.domain.minutes import fold_shares
from services.aggregator.domain.model import PoolAggregate

from .pipeline_samples import NOW_MS, record, share_json
from .samples import MIN, T0_MS, block_hash

pytestmark = pytest.mark.unit

TOPICS = ("pool.shares", "pool.blocks", "pool.miners")
MODES = ("records", "columnar", "auto")


def _settings(mode: str, per_worker: float = 2.0) -> AggregatorSettings:
    return AggregatorSettings(aggregator_fold=mode, aggregator_fold_auto_shares_per_worker=per_worker,
                              max_lateness_ms=10 * MIN)


class Stream:
    """Folds batches as the pipeline's _prepare does: one flat decode, runs sliced per (partition, topic)."""

    def __init__(self, settings: AggregatorSettings) -> None:
        self.settings = settings
        self.models: dict[int, PoolAggregate] = {}
        self.offsets: dict[int, dict[str, int]] = {}

    def fold(self, batch: Sequence[Any]) -> tuple[dict[int, Folded], list[Any]]:
        groups: dict[int, dict[str, list[Any]]] = {}
        for r in batch:
            groups.setdefault(r.partition, {}).setdefault(r.topic, []).append(r)
        flat = [r for topics in groups.values() for records in topics.values() for r in records]
        decoded = decode_for_fold(flat, NOW_MS, self.settings)
        out: dict[int, Folded] = {}
        start = 0
        for p, topics in groups.items():
            model = self.models.setdefault(p, new_model(self.settings))
            expected = self.offsets.setdefault(p, {t: 0 for t in TOPICS})
            runs = []
            for topic, records in topics.items():
                runs.append((topic, records, decoded.events[start:start + len(records)]))
                start += len(records)
            folded = out[p] = fold_partition(model, p, runs, dict(expected))
            for move in folded.write.offsets:
                expected[move.topic] = move.next_offset
        return out, [(d.record.offset, d.record.topic, d.reason, d.errors) for d in decoded.letters]


def _plain(folded: Folded) -> dict[str, Any]:
    w = folded.write
    shares = folded.shares
    return {
        "shares": None if shares is None else (shares.received, shares.duplicates, shares.late, shares.too_late,
                                               list(shares.worker_deltas.items()), list(shares.pool_deltas.items()),
                                               list(shares.activity.items())),
        "worker_deltas": list(w.worker_deltas.items()), "pool_deltas": list(w.pool_deltas.items()),
        "activity": list(w.pool_activity.items()), "blocks": w.blocks, "workers": w.workers,
        "offsets": w.offsets, "claims": w.claims, "watermark": w.watermark_ms,
        "journals": {k: (list(j.hashes), list(j.ts_ms), j.watermark_ms) for k, j in w.id_journals.items()},
        "connections": folded.connections, "miner_duplicates": folded.miner_duplicates,
        "newest_share_ms": folded.newest_share_ms,
    }


def _model_state(model: PoolAggregate) -> tuple[Any, ...]:
    keys = sorted(model.workers.keys())
    totals = [model.workers.totals(k, model.watermark_ms) for k in keys]
    figures = [model.worker_figures(k, model.watermark_ms) for k in keys]
    return (model.watermark_ms, model.share_arrival_ms, len(model.dedup), keys, totals, figures,
            sorted(model.miners()), sorted(model.pools.keys()),
            [model.pools.totals(p, model.watermark_ms) for p in sorted(model.pools.keys())])


def _block(i: int, ts_ms: int) -> dict[str, Any]:
    return {"event_id": f"b{i}", "type": "block", "ts": ts_ms, "node": "n1", "miner": "m1", "worker": "w1",
            "height": 7 + i, "hash": block_hash(7 + i), "network_difficulty": 50.0, "status": "candidate"}


def _miner(i: int, ts_ms: int, worker: str) -> dict[str, Any]:
    return {"event_id": f"c{i}", "type": "miner", "ts": ts_ms, "node": "n1", "miner": "m1", "worker": worker,
            "state": "connected" if i % 2 else "disconnected"}


def random_stream(seed: int, n: int = 3_000, *, bad: bool = True) -> list[Any]:
    """Shares from several pools, miners and workers, with retries, reordering, late and too-late
    events, bad records, blocks and miner events, over three partitions."""
    rng = random.Random(seed)
    offsets = {(p, t): 0 for p in range(3) for t in TOPICS}
    out = []
    clock = T0_MS
    sent: list[dict[str, Any]] = []
    for i in range(n):
        clock += rng.randrange(0, 400)
        roll = rng.random()
        p = rng.randrange(3)
        topic = "pool.shares"
        value: Any
        if roll < 0.06 and sent:
            value = rng.choice(sent)  # a retry (same id, same time)
        elif roll < 0.08 and bad:
            value = rng.choice([b"garbage", b"", b"[1]", b'{"type": "share"}', None,
                                share_json(clock, event_id=f"x{i}", miner="bad miner"),
                                share_json(clock, event_id=f"x{i}", difficulty=0),
                                {**share_json(clock, event_id=f"x{i}"), "ts": clock + 3_600_000}])
        elif roll < 0.09:
            topic, value = "pool.blocks", _block(i, clock)
        elif roll < 0.11:
            topic, value = "pool.miners", _miner(i, clock, f"w{rng.randrange(4)}")
        else:
            ts = clock - rng.choice([0, 0, 0, rng.randrange(0, 2 * MIN), rng.randrange(0, 20 * MIN)])
            value = share_json(ts, event_id=f"s{i}", miner=f"m{rng.randrange(12)}", worker=f"w{rng.randrange(4)}",
                               pool=rng.choice(["main", "main", "solo"]),
                               difficulty=rng.choice([1.0, 65536.0, rng.random() * 1e6, 1e-12, 3e-9]),
                               status=rng.choice(["accepted", "accepted", "rejected", "stale"]))
            if rng.random() < 0.1:
                value["actual_difficulty"] = rng.random() * 1e7
            if bad and rng.random() < 0.02:
                value["ts"] = "2026-01-01T00:00:00.250Z"  # RFC 3339: decided by the models
            sent.append(value)
        offset = offsets[(p, topic)]
        offsets[(p, topic)] += 1
        out.append(record(value, topic=topic, partition=p, offset=offset, timestamp=NOW_MS))
    return out


def split(stream: list[Any], rng: random.Random) -> list[list[Any]]:
    cuts = sorted(rng.sample(range(1, len(stream)), 6))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


@pytest.mark.parametrize(("seed", "bad"), [(0, True), (1, True), (2, True), (3, True), (4, False), (5, False)])
def test_every_mode_folds_random_batches_exactly_as_records(seed: int, bad: bool) -> None:
    stream = random_stream(seed, bad=bad)
    batches = split(stream, random.Random(seed))
    runs = {mode: Stream(_settings(mode, per_worker=2.0 if seed % 2 else 0.5)) for mode in MODES}
    letters_seen = 0
    for batch in batches:
        results = {mode: run.fold(batch) for mode, run in runs.items()}
        want_folds, want_letters = results["records"]
        letters_seen += len(want_letters)
        for mode in ("columnar", "auto"):
            folds, letters = results[mode]
            assert letters == want_letters, mode
            assert folds.keys() == want_folds.keys()
            for p, folded in folds.items():
                assert _plain(folded) == _plain(want_folds[p]), (mode, p)
    assert bool(letters_seen) == bad
    for mode in ("columnar", "auto"):
        for p, model in runs[mode].models.items():
            assert _model_state(model) == _model_state(runs["records"].models[p])


def test_a_stream_cut_differently_gives_the_same_minute_rows() -> None:
    # Rows are exact sums, whatever the cut (window figures are float sums per batch: not compared).
    stream = random_stream(9, 2_000)
    totals: list[dict[int, Any]] = []
    for settings, seed in ((_settings("columnar"), 1), (_settings("records"), 2)):
        run = Stream(settings)
        rows: dict[int, dict[Any, Any]] = {}
        for batch in split(stream, random.Random(seed)):
            for p, folded in run.fold(batch)[0].items():
                merge_deltas(rows.setdefault(p, {}), folded.write.worker_deltas)
        totals.append({p: (sorted(r.items()), run.models[p].watermark_ms, len(run.models[p].dedup))
                       for p, r in rows.items()})
    assert totals[0] == totals[1]


def test_columnar_events_slice_and_index_like_the_records_list() -> None:
    records = random_stream(5, 400)
    want = decode_records(records, NOW_MS).events
    events = decode_columns(records, NOW_MS).events
    assert isinstance(events, ColumnarEvents) and len(events) == len(want)
    view = events[100:250]
    assert len(view) == 150 and [_same(e) for e in view] == [_same(e) for e in want[100:250]]
    assert view.materialized() == list(view)
    assert _same(events[-1]) == _same(want[-1])
    with pytest.raises(IndexError):
        events[len(want)]
    with pytest.raises(ValueError, match="runs"):
        events[::2]


def _same(event: Any) -> Any:
    # What the columns keep of a share (node and reject reason are not folded).
    if event is None or event.type != "share":
        return event
    return (event.event_id, event.ts_ms, event.pool, event.miner, event.worker, event.difficulty, event.status,
            event.actual_difficulty)


def test_auto_chooses_by_shares_per_worker() -> None:
    dense = [record(share_json(T0_MS + i, event_id=f"d{i}"), offset=i) for i in range(10)]
    sparse = [record(share_json(T0_MS, event_id=f"s{i}", worker=f"w{i}"), offset=i) for i in range(10)]
    auto = _settings("auto", per_worker=2.0)
    assert isinstance(decode_for_fold(dense, NOW_MS, auto).events, ColumnarEvents)
    assert isinstance(decode_for_fold(sparse, NOW_MS, auto).events, list)
    assert isinstance(decode_for_fold(sparse, NOW_MS, _settings("columnar")).events, ColumnarEvents)
    assert isinstance(decode_for_fold(dense, NOW_MS, _settings("records")).events, list)


def test_fold_and_round_seconds_keep_todays_dict_order() -> None:
    records = random_stream(11, 1_000)
    decoded = decode_columns(records, NOW_MS)
    cols = decoded.events.columns
    shares = [e for e in decode_records(records, NOW_MS).events if e is not None and e.type == "share"]
    rows = np.arange(len(cols), dtype=np.int64)
    assert list(fold_columns(cols, rows).items()) == list(fold_shares(shares).items())
    assert list(round_seconds(cols, rows).items()) == list(fold_round_seconds(shares).items())
    assert fold_columns(cols, rows[:0]) == {}


@pytest.mark.parametrize("step", [1, 2, 7])
def test_the_models_columns_are_the_dicts_groups_in_its_order(step: int) -> None:
    # Rows a partition picks out of the batch: the batch-wide worker numbers must not leak in.
    cols = decode_columns(random_stream(12, 1_000), NOW_MS).events.columns
    rows = np.arange(step - 1, len(cols), step, dtype=np.int64)
    deltas, groups = fold_groups(cols, rows)
    assert groups == MinuteGroups.of_deltas(deltas)
    assert len(groups) == len(deltas) > 0
    assert fold_groups(cols, rows[:0]) == ({}, MinuteGroups.of_deltas({}))


def test_lateness_matches_the_loop() -> None:
    ts = np.array([T0_MS, T0_MS - 2 * MIN, T0_MS + MIN, T0_MS - 20 * MIN, T0_MS + MIN - 1], np.int64)
    kept = lateness(ts, np.arange(5, dtype=np.int64), T0_MS - MIN, limit_ms=10 * MIN)
    assert (kept.rows.tolist(), kept.late, kept.too_late, kept.watermark_ms) == ([0, 1, 2, 4], 2, 1, T0_MS + MIN)


def test_an_empty_batch_in_every_mode() -> None:
    for mode in MODES:
        decoded = decode_for_fold([], NOW_MS, _settings(mode))
        assert len(decoded.events) == 0 and decoded.letters == []


def test_stable_hashes_equal_stable_hash64() -> None:
    ids = ["a", "n1-000001", "事件", "x" * 64, "run00000-12345"]
    assert stable_hashes(ids).tolist() == [stable_hash64(i) for i in ids]
    assert stable_hashes([]).tolist() == []


def test_a_dedup_without_journal_or_stable_hash_answers_the_same() -> None:
    # Models built outside the service (default hash, no journal) take the per-event path.
    records = random_stream(13, 1_500)
    shares = [e for e in decode_records(records, NOW_MS).events if e is not None and e.type == "share"]
    cols = decode_columns(records, NOW_MS).events.columns
    today, columnar = PoolAggregate(max_lateness_ms=10 * MIN), PoolAggregate(max_lateness_ms=10 * MIN)
    a = today.ingest_shares(shares)
    c = ingest_columns(columnar, cols, np.arange(len(cols), dtype=np.int64))
    assert (a.duplicates, a.late, a.too_late, list(a.worker_deltas.items()), a.activity) == (
        c.duplicates, c.late, c.too_late, list(c.worker_deltas.items()), c.activity)
