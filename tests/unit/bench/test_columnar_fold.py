"""The columnar fold prototype (bench/columnar) equals today's per-event path exactly."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pytest

from bench.columnar.decode import STATUS_CODES, ShareColumns, decode_columns
from bench.columnar.fold import fold_columns
from bench.columnar.ingest import ColumnarAggregate, round_seconds
from bench.columnar.prefilter import lateness
from bench.columnar.units import group_units, unit_parts
from services.aggregator.consume.decoding import decode_records
from services.aggregator.domain.blocks import fold_round_seconds
from services.aggregator.domain.minutes import fold_shares
from services.aggregator.domain.model import PoolAggregate
from tests.unit.aggregator.pipeline_samples import record as kafka_record
from tests.unit.aggregator.pipeline_samples import share_json
from tests.unit.event_samples import NOW_MS, record
from tests.unit.test_share_checks import _FIELDS, _PALETTE

pytestmark = pytest.mark.unit

MIN = 60_000
T0 = NOW_MS - 30 * MIN


def records_of(objs: list[dict[str, Any]]) -> list[Any]:
    return [kafka_record(orjson.dumps(o), offset=i) for i, o in enumerate(objs)]


def shares_of(records: list[Any]) -> list[Any]:
    return [e for e in decode_records(records, wall_ms=NOW_MS).events if e is not None and e.type == "share"]


def assert_fold_equal(objs: list[dict[str, Any]]) -> None:
    records = records_of(objs)
    cols = decode_columns(records, NOW_MS)
    assert fold_columns(cols) == fold_shares(shares_of(records))


def share(i: int, ts: int, **extra: Any) -> dict[str, Any]:
    return {**share_json(ts, event_id=f"e{i}", miner=f"m{i % 3}", worker=f"w{i % 2}"), **extra}


CASES: dict[str, list[dict[str, Any]]] = {
    "one event": [share(0, T0)],
    "same worker and minute": [share(0, T0, miner="m", worker="w"), share(1, T0 + 5, miner="m", worker="w")],
    "minute boundary": [share(0, T0 - T0 % MIN - 1, miner="m"), share(1, T0 - T0 % MIN, miner="m"),
                        share(2, T0 - T0 % MIN + MIN - 1, miner="m"), share(3, T0 - T0 % MIN + MIN, miner="m")],
    "huge and tiny difficulties": [share(i, T0, miner="m", worker="w", difficulty=d) for i, d in enumerate(
        [1e200, 5e-324, 1e-30, 3e-9, 2.0**-28, 0.1, 65536.0, 2**64 - 1, 1.4e284, 1e-300])],
    "rejected and stale": [share(0, T0, status="rejected", difficulty=9.0), share(1, T0, status="stale"),
                           share(2, T0, status="accepted", actual_difficulty=7.5),
                           share(3, T0, status="rejected", actual_difficulty=99.0, reject_reason="low")],
    "rfc3339 time and defaults": [dict(share(0, T0), ts="2025-12-31T23:31:00.250Z"),
                                  {k: v for k, v in share(1, T0).items() if k not in ("pool", "worker")}],
    "bad records mixed in": [share(0, T0), share(1, T0, difficulty=0), share(2, T0, miner="a b"),
                             share(3, T0, event_id="事件"), record("block"), share(4, T0)],
}


@pytest.mark.parametrize("objs", list(CASES.values()), ids=list(CASES))
def test_fold_equals_fold_shares(objs: list[dict[str, Any]]) -> None:
    assert_fold_equal(objs)


def test_fold_equals_fold_shares_on_random_input() -> None:
    rng = random.Random(15)
    objs = [share(i, T0 + rng.randrange(-3 * MIN, 3 * MIN), miner=f"m{rng.randrange(40)}",
                  worker=f"w{rng.randrange(3)}", difficulty=rng.choice([1.0, 65536.0, rng.random() * 1e6, 1e-12]),
                  status=rng.choice(list(STATUS_CODES)),
                  actual_difficulty=rng.choice([None, rng.random() * 1e7])) for i in range(5_000)]
    assert_fold_equal(objs)


def test_empty_batch() -> None:
    assert fold_columns(decode_columns([], NOW_MS)) == {}


@pytest.mark.parametrize("difficulty", [1e200, 5e-324, 1e-30, 3e-9, 2.0**-28, 0.1, 65536.0, 1.4e284])
def test_unit_parts_are_int_of_the_scaled_difficulty(difficulty: float) -> None:
    m, shift = unit_parts(np.array([difficulty]))
    assert int(m[0]) << int(shift[0]) == int(difficulty * 2.0**80)


def test_a_difficulty_too_big_for_units_raises_as_today() -> None:
    with pytest.raises(OverflowError):
        int(1.5e284 * 2.0**80)
    with pytest.raises(OverflowError):
        unit_parts(np.array([1.5e284]))


def test_group_units_sum_exactly_in_any_order() -> None:
    rng = random.Random(7)
    values = [rng.choice([1e200, 1e-30, 3e-9, 65536.0, 0.1]) * rng.random() for _ in range(3_000)]
    groups = [rng.randrange(25) for _ in values]
    want = [0] * 25
    for g, d in zip(groups, values, strict=True):
        want[g] += int(d * 2.0**80)
    m, shift = unit_parts(np.array(values))
    assert group_units(np.array(groups, np.int64), 25, m, shift) == want


@pytest.mark.parametrize("seed", range(3))
def test_decode_never_looser_and_same_values(seed: int) -> None:
    # valid_share's mutation palette: every share the columns hold is the one today's decoding yields.
    rng = random.Random(seed)
    objs = [record("share", **{"event_id": f"id{i}", "ts": NOW_MS - i,
                               **{f: rng.choice(_PALETTE) for f in _FIELDS if f != "event_id" and rng.random() < 0.1}})
            for i in range(1_500)]
    records = records_of(objs)
    cols = decode_columns(records, NOW_MS)
    want = shares_of(records)
    assert len(cols) == len(want) > 100
    assert cols.slow > 100  # the row-wise path was exercised too
    for i, s in enumerate(want):
        assert (cols.event_id[i], int(cols.ts[i]), cols.pool[i], cols.miner[i], cols.worker[i]) == (
            s.event_id, s.ts_ms, s.pool, s.miner, s.worker)
        assert float(cols.difficulty[i]) == s.difficulty and int(cols.status[i]) == STATUS_CODES[s.status]
        assert float(cols.actual[i]) == (s.actual_difficulty or 0.0)


def ingest_both(batches: list[list[dict[str, Any]]]) -> None:
    today, columnar = PoolAggregate(max_lateness_ms=10 * MIN), ColumnarAggregate(PoolAggregate(max_lateness_ms=10 * MIN))
    for objs in batches:
        records = records_of(objs)
        a = today.ingest_shares(shares_of(records))
        c = columnar.ingest(decode_columns(records, NOW_MS))
        assert (a.received, a.duplicates, a.late, a.too_late) == (c.received, c.duplicates, c.late, c.too_late)
        assert a.worker_deltas == c.worker_deltas and a.pool_deltas == c.pool_deltas
        assert a.activity == c.activity
    assert today.watermark_ms == columnar.model.watermark_ms


def test_duplicates_in_a_batch_and_across_batches() -> None:
    first = [share(0, T0), share(1, T0), share(0, T0), share(2, T0 + 1)]
    second = [share(1, T0), share(3, T0 + 2), share(3, T0 + 2), dict(share(2, T0 + 1), status="stale")]
    ingest_both([first, second])


def test_same_id_in_another_bucket_is_not_a_repeat() -> None:
    ingest_both([[share(0, T0), share(0, T0 + 60_000)]])


def test_late_and_too_late() -> None:
    ingest_both([[share(0, T0), share(1, T0 + 3 * MIN), share(2, T0 + MIN), share(3, T0 - 8 * MIN),
                  share(4, T0 + 2 * MIN + 1)], [share(5, T0 - 20 * MIN), share(6, T0 + 3 * MIN + 5)]])


def test_ingest_on_random_batches() -> None:
    rng = random.Random(3)
    batches = [[share(rng.randrange(3_000), T0 + rng.randrange(-4 * MIN, 6 * MIN), miner=f"m{rng.randrange(30)}",
                      status=rng.choice(list(STATUS_CODES))) for _ in range(800)] for _ in range(5)]
    ingest_both(batches)


def test_round_seconds_equal_fold_round_seconds() -> None:
    objs = [share(i, T0 + 137 * i, pool=f"p{i % 2}", status=("accepted", "rejected")[i % 3 == 0]) for i in range(400)]
    records = records_of(objs)
    cols = decode_columns(records, NOW_MS)
    assert round_seconds(cols, np.arange(len(cols))) == fold_round_seconds(shares_of(records))


def test_lateness_alone_matches_the_loop() -> None:
    ts = np.array([T0, T0 - 2 * MIN, T0 + MIN, T0 - 20 * MIN, T0 + MIN - 1], np.int64)
    kept = lateness(ts, np.arange(5), T0 - MIN, limit_ms=10 * MIN)
    assert (kept.rows.tolist(), kept.late, kept.too_late, kept.watermark_ms) == ([0, 1, 2, 4], 2, 1, T0 + MIN)


def test_columns_type() -> None:
    assert isinstance(decode_columns(records_of([share(0, T0)]), NOW_MS), ShareColumns)


def same_share(cols: ShareColumns, records: list[Any]) -> bool:
    want = shares_of(records)
    if len(cols) != len(want):
        return False
    return all(
        (cols.event_id[i], int(cols.ts[i]), cols.pool[i], cols.miner[i], cols.worker[i], float(cols.difficulty[i]),
         int(cols.status[i]), float(cols.actual[i]))
        == (s.event_id, s.ts_ms, s.pool, s.miner, s.worker, s.difficulty, STATUS_CODES[s.status],
            s.actual_difficulty or 0.0)
        for i, s in enumerate(want))


def test_batch_wide_checks_never_looser_one_record_at_a_time() -> None:
    # A batch of one goes through the batch-wide checks: each mutation alone must agree.
    rng = random.Random(1128)
    fast = 0
    for _ in range(3_000):
        obj = record("share", **{f: rng.choice(_PALETTE) for f in _FIELDS if rng.random() < 0.12})
        records = records_of([obj])
        cols = decode_columns(records, NOW_MS)
        assert same_share(cols, records), obj
        fast += cols.slow == 0 and len(cols) == 1
    assert fast > 500


@pytest.mark.parametrize("field", ["event_id", "pool", "node", "worker", "miner", "reject_reason"])
def test_every_ascii_character_is_judged_as_today(field: str) -> None:
    for code in range(128):
        records = records_of([record("share", **{field: f"a{chr(code)}b"}), record("share", event_id="ok")])
        assert same_share(decode_columns(records, NOW_MS), records), (field, code)
